module github.com/wirereactor/wirereactor/bench/peers

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/digitalocean/go-qemu v0.0.0-20250212194115-ee9b0668d242
	github.com/gorilla/websocket v1.5.3
	github.com/kata-containers/govmm v0.0.0-20220119175834-88960a15dacd
	github.com/wirereactor/wirereactor v0.0.0
)

require (
	github.com/digitalocean/go-libvirt v0.0.0-20220804181439-8648fbde413e // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/wirereactor/wirereactor => ../..
