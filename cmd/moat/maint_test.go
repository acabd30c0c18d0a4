package main

import (
	"encoding/json"
	"fmt"
	"os"
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

// TestReportsPrune: moat reports prune --dry-run counts per table what
// the prune then deletes, and nothing is left to prune afterwards.
func TestReportsPrune(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "moat.yaml")
	if err := os.WriteFile(cfg, []byte("retention:\n  raw: 5d\n  reports: 10d\n  rollups: 20d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustMoat(t, "seed", "--data", data, "--org", "demo", "--domains", "3", "--days", "30")
	counts := func(args ...string) map[string]float64 {
		var res struct {
			Counts []struct {
				Table, Action string
				Rows          float64
			}
		}
		out := mustMoat(t, append([]string{"reports", "prune", "--json", "--config", cfg, "--data", data}, args...)...)
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		m := map[string]float64{}
		for _, c := range res.Counts {
			m[c.Table+" "+c.Action] = c.Rows
		}
		return m
	}
	dry := counts("--dry-run")
	for _, k := range []string{"tlsrpt_reports delete", "tlsrpt_reports clear raw", "tlsrpt_daily delete"} {
		if dry[k] == 0 {
			t.Errorf("dry run: %v, want rows for %s", dry, k)
		}
	}
	if text := mustMoat(t, "reports", "prune", "--dry-run", "--config", cfg, "--data", data); !strings.Contains(text, "rows would be deleted (older than") {
		t.Errorf("dry run text: %s", text)
	}
	done := counts()
	for k, n := range dry {
		if k != "intake_log delete" && done[k] != n { // seed's log lines are of today
			t.Errorf("%s: %v rows, the dry run said %v", k, done[k], n)
		}
	}
	for k, n := range counts("--dry-run") {
		if n != 0 {
			t.Errorf("after the prune, %s: %v rows left", k, n)
		}
	}
	// A report whose bytes went: show says so, --raw refuses.
	var list struct{ Reports []struct{ ID int64 } }
	if err := json.Unmarshal([]byte(mustMoat(t, "reports", "tlsrpt", "list", "--json", "--data", data, "--since", "9d")), &list); err != nil || len(list.Reports) == 0 {
		t.Fatalf("list: %v %v", list, err)
	}
	last := fmt.Sprint(list.Reports[len(list.Reports)-1].ID)
	if out := mustMoat(t, "reports", "tlsrpt", "show", last, "--data", data); !strings.Contains(out, "deleted by retention") {
		t.Errorf("show of a report older than retention.raw: %s", out)
	}
	if code, _, errs := moat(t, "reports", "tlsrpt", "show", last, "--raw", "--data", data); code != exitError || !strings.Contains(errs, "deleted by retention") {
		t.Errorf("show --raw: exit %d, %s", code, errs)
	}
}
