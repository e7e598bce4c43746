// Package unix provides Unix-domain stream sockets for transport sessions:
// filesystem paths and Linux abstract names ("@name"), socket files created
// 0600 by default, stale socket files cleaned up safely, and file descriptor
// passing with SCM_RIGHTS (what QMP's getfd and add-fd need).
package unix
