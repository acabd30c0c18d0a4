package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackupWhileServing: moat backup copies the database while moat serve
// runs and stores reports; restore refuses while it runs; migrate says the
// schema is up to date.
func TestBackupWhileServing(t *testing.T) {
	t.Parallel()
	addrs, data := devServe(t)
	c := reportClient(addrs["https"], devRoots(t, data))
	var (
		sent atomic.Int64
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := fmt.Sprintf(`{"organization-name":"Backup Test","date-range":{"start-datetime":"2026-11-01T00:00:00Z","end-datetime":"2026-11-01T23:59:59Z"},"contact-info":"b@example.org","report-id":"backup-%d","policies":[{"policy":{"policy-type":"sts","policy-domain":"demo.moat.test"},"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]}`, i)
			resp, err := c.Post("https://reports.sts.moat.test/v1/tlsrpt", "application/tlsrpt+json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				sent.Add(1)
			}
			time.Sleep(2 * time.Millisecond) // under the per-client rate limit's burst
		}
	})
	for deadline := time.Now().Add(10 * time.Second); sent.Load() < 5 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	file := filepath.Join(t.TempDir(), "moat-backup.db")
	var b struct {
		Reports int64 `json:"reports"`
		Domains int64 `json:"domains"`
	}
	out := mustMoat(t, "backup", file, "--data", data, "--json")
	close(stop)
	wg.Wait()
	if err := json.Unmarshal([]byte(out), &b); err != nil || b.Domains < 2 || b.Reports < 5 {
		t.Errorf("backup while serving: %s, %v; want the demo's domains and the reports stored by then", out, err)
	}
	if code, _, errs := moat(t, "restore", file, "--data", data); code != exitError || !strings.Contains(errs, "moat serve is running") {
		t.Errorf("restore while serving: exit %d, %q", code, errs)
	}
	if out := mustMoat(t, "migrate", "--dry-run", "--data", data); !strings.Contains(out, "up to date") {
		t.Errorf("migrate --dry-run: %q", out)
	}
}
