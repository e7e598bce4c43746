package transport

import "time"

// SetIdleResume sets how long the reader role stays free before the read
// loop takes it back, until the returned function restores it.
func SetIdleResume(d time.Duration) (restore func()) {
	old := idleResumeDefault
	idleResumeDefault = d
	return func() { idleResumeDefault = old }
}
