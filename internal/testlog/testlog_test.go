package testlog

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// TestBuffer: lines written from many goroutines all arrive whole, and
// the level is honoured.
func TestBuffer(t *testing.T) {
	t.Parallel()
	var b Buffer
	log := b.Logger(slog.LevelInfo)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				log.Info("line", "k", "v")
				log.Debug("hidden")
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 800 || strings.Contains(b.String(), "hidden") {
		t.Fatalf("%d lines (want 800), debug lines present: %v", len(lines), strings.Contains(b.String(), "hidden"))
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, `level=INFO msg=line k=v`) {
			t.Fatalf("torn line %q", l)
		}
	}
}
