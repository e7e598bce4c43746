package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wirereactor/wirereactor/transcript"
)

// recordName is the file name of a transcript of a connection to backend
// name that began at t: the time first, in UTC to the nanosecond and of
// fixed width, so that names sort by time.
func recordName(t time.Time, name string) string {
	return t.UTC().Format("20060102T150405.000000000Z") + "-" + name + ".jsonl"
}

// recording is the transcript of one bridged connection.
type recording struct {
	rec  *transcript.Recorder
	f    *os.File
	path string
}

// startRecording creates the transcript of a new connection of client
// remote to backend name in Config.RecordDir. The file is readable by its
// owner only: QMP sessions may carry secrets.
func (b *Bridge) startRecording(name, remote string) (*recording, error) {
	path := filepath.Join(b.cfg.RecordDir, recordName(time.Now(), name))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	rec, err := transcript.NewRecorder(f, transcript.RecorderConfig{SplitJSON: true, Header: transcript.Header{Protocol: "qmp",
		Note: fmt.Sprintf("recorded by qmp-ws-bridge between client %s and backend %s (%s)", remote, name, b.cfg.Backends[name])}})
	if err != nil {
		f.Close()
		return nil, err
	}
	return &recording{rec: rec, f: f, path: path}, nil
}

// finish closes the transcript once the connection ended, and logs an
// error writing it.
func (b *Bridge) finishRecording(r *recording) {
	if err := errors.Join(r.rec.Err(), r.f.Close()); err != nil {
		b.log().Warn("recording failed", "file", r.path, "err", err)
	}
}
