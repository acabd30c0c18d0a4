package reqid

import (
	"regexp"
	"sync"
	"testing"
)

// TestNew: ids are distinct, also made concurrently, share the process's
// prefix, and have the documented shape.
func TestNew(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^[a-z2-7]{8}-[0-9a-z]+$`)
	const goroutines, each = 8, 1000
	ids := make(chan string, goroutines*each)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				ids <- New()
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %s made twice", id)
		}
		seen[id] = true
		if !shape.MatchString(id) || id[:8] != prefix {
			t.Fatalf("id %q: not prefix %q, a dash and a base-36 counter", id, prefix)
		}
	}
	if len(seen) != goroutines*each {
		t.Errorf("%d ids, want %d", len(seen), goroutines*each)
	}
	if got := Sub("abc-1", 2); got != "abc-1.2" {
		t.Errorf("Sub: %q", got)
	}
}
