package e2e

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// maxLogBytes bounds the log kept per test.
const maxLogBytes = 4 << 20

// testLogs collects what the servers of one test log. It is printed when
// the test fails or runs with -v. Writes after the test has ended are
// dropped: Pebble's validation goroutines have no stop and may still log.
type testLogs struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done bool
}

// newTestLogs must be called before any server is started, so that its
// cleanup runs after theirs and prints their shutdown too.
func newTestLogs(t *testing.T) *testLogs {
	l := &testLogs{}
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.done = true
		if t.Failed() || testing.Verbose() {
			t.Logf("server logs:\n%s", l.buf.String())
		}
	})
	return l
}

func (l *testLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done && l.buf.Len()+len(p) <= maxLogBytes {
		l.buf.Write(p)
	}
	return len(p), nil
}

// logger returns a logger writing into l, its lines tagged with who.
func (l *testLogs) logger(who string) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})).With("who", who)
}
