//go:build linux

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store/pgtest"
)

// outage is what the clients of the instances saw while a fault lasted.
type outage struct {
	serveFails   int      // DNS or HTTPS policy answers that failed
	serveErrs    []string // the first few of them
	refused      int      // reports answered 503 with Retry-After
	badRefusals  []string // reports answered otherwise (not 200, not 503 with Retry-After)
	acked        []string // reports acknowledged (200) during the fault
	smtpRefusals []int    // SMTP reply codes to reports by mail
}

func (o *outage) serveFailed(err error) {
	o.serveFails++
	if len(o.serveErrs) < 5 {
		o.serveErrs = append(o.serveErrs, err.Error())
	}
}

// TestFaultPostgresDown stops PostgreSQL under two serving instances (a
// fast shutdown, as `pg_ctl stop -m fast`) and starts it again: while it
// is down, DNS and the HTTPS policies are served from the snapshot, intake
// refuses every report with a temporary failure (HTTP 503 with
// Retry-After, SMTP 451) and /readyz says not ready; once it is back,
// everything recovers without a restart: /readyz, intake, and changes
// reaching every instance.
func TestFaultPostgresDown(t *testing.T) {
	long(t)
	t.Parallel()
	pg := pgtest.Own(t)
	url := pg.NewDatabase(t)
	c := newCluster(t, url, time.Second)
	a, b := c.start("a"), c.start("b")
	c.validateOn(a)
	const domain, org = "echo.test", "Outage Sender"
	insts := []*instance{a, b}
	id := c.addDomain(domain, "testing")
	for _, inst := range insts {
		waitFor(t, "moat "+inst.name+" serves "+domain, 60*time.Second, 20*time.Millisecond, func(ctx context.Context) error {
			return inst.served(ctx, c.acme.roots, domain, id, "testing")
		})
	}
	var acked []string
	n := 0
	send := func(inst *instance) (string, int, string, error) {
		n++
		rid := fmt.Sprintf("outage-%d", n)
		code, retry, err := inst.post(t.Context(), report(org, rid, domain, 0))
		if err == nil && code == http.StatusOK {
			acked = append(acked, rid)
		}
		return rid, code, retry, err
	}
	for i := range 10 {
		if _, code, _, err := send(insts[i%2]); err != nil || code != http.StatusOK {
			t.Fatalf("report before the outage: %d %v", code, err)
		}
	}
	for _, inst := range insts {
		if code, body, err := inst.get(t.Context(), "metrics", "/readyz"); err != nil || code != http.StatusOK {
			t.Fatalf("moat %s /readyz before the outage: %d %q %v", inst.name, code, body, err)
		}
	}

	// A stream of reports to both goes on across the stop and the start:
	// reports in flight when the database goes away are acknowledged
	// only if they were committed.
	var (
		streamMu    sync.Mutex
		streamAcked []string
		streamCodes = map[int]int{}
		streamSent  atomic.Int64
	)
	stopStream := make(chan struct{})
	var streaming sync.WaitGroup
	for w := range 4 {
		streaming.Go(func() {
			for {
				select {
				case <-stopStream:
					return
				case <-time.After(5 * time.Millisecond):
				}
				k := streamSent.Add(1)
				rid := fmt.Sprintf("stream-%d", k)
				code, retry, err := insts[w%2].post(t.Context(), report(org, rid, domain, 0))
				streamMu.Lock()
				switch {
				case err != nil:
					streamCodes[0]++
				case code == http.StatusOK:
					streamAcked = append(streamAcked, rid)
					streamCodes[code]++
				case code == http.StatusServiceUnavailable && retry != "":
					streamCodes[code]++
				default:
					streamCodes[code]++
					t.Errorf("report %s: %d Retry-After %q", rid, code, retry)
				}
				streamMu.Unlock()
			}
		})
	}
	time.Sleep(200 * time.Millisecond)

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	var o outage
	var refusedIDs []string
	var notReady, alive int
	for time.Since(stopped) < 3*time.Second {
		for _, inst := range insts {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			if err := inst.served(ctx, c.acme.roots, domain, id, "testing"); err != nil {
				o.serveFailed(err)
			}
			rid, code, retry, err := send(inst)
			switch {
			case err == nil && code == http.StatusServiceUnavailable && retry != "":
				o.refused++
				refusedIDs = append(refusedIDs, rid)
			case err == nil && code == http.StatusOK:
				o.acked = append(o.acked, rid)
			default:
				o.badRefusals = append(o.badRefusals, fmt.Sprintf("moat %s: %d Retry-After %q %v", inst.name, code, retry, err))
			}
			if code, _, err := inst.get(ctx, "metrics", "/readyz"); err == nil && code == http.StatusServiceUnavailable {
				notReady++
			}
			if code, _, err := inst.get(ctx, "metrics", "/healthz"); err == nil && code == http.StatusOK {
				alive++
			}
			cancel()
			o.smtpRefusals = append(o.smtpRefusals, smtpCode(inst.mail(report(org, "outage-mail-"+inst.name, domain, 0), "m")))
		}
		time.Sleep(100 * time.Millisecond)
	}
	rounds := o.refused + len(o.acked) + len(o.badRefusals)
	if o.serveFails > 0 {
		t.Errorf("%d DNS or HTTPS policy answers failed while PostgreSQL was down: %q", o.serveFails, o.serveErrs)
	}
	if len(o.acked) > 0 || len(o.badRefusals) > 0 {
		t.Errorf("while PostgreSQL was down: reports acknowledged %q, answered other than 503 with Retry-After %q", o.acked, o.badRefusals)
	}
	for _, code := range o.smtpRefusals {
		if code != 451 {
			t.Errorf("reports by SMTP while PostgreSQL was down: reply codes %v, want 451 each", o.smtpRefusals)
			break
		}
	}
	if notReady != rounds || alive != rounds {
		t.Errorf("while PostgreSQL was down, of %d probes: /readyz said 503 %d times, /healthz 200 %d times; want all", rounds, notReady, alive)
	}

	// The outage shows in the metrics, which answer without the store.
	for _, sample := range []string{`moat_intake_reports_total{outcome="failed"}`, "moat_store_errors_total"} {
		if v, err := a.metric(t.Context(), sample); err != nil || v == 0 {
			t.Errorf("moat a while PostgreSQL was down: %s = %v, %v; want more than 0", sample, v, err)
		}
	}

	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	down := time.Since(stopped)
	ready := time.Duration(0)
	for _, inst := range insts {
		ready = max(ready, waitFor(t, "moat "+inst.name+" ready again", 30*time.Second, 20*time.Millisecond, func(ctx context.Context) error {
			if code, body, err := inst.get(ctx, "metrics", "/readyz"); err != nil || code != http.StatusOK {
				return fmt.Errorf("/readyz %d %q: %w", code, body, err)
			}
			return nil
		}))
	}
	intake := time.Duration(0)
	for _, inst := range insts {
		intake = max(intake, waitFor(t, "moat "+inst.name+" accepts reports again", 30*time.Second, 20*time.Millisecond, func(context.Context) error {
			if _, code, _, err := send(inst); err != nil || code != http.StatusOK {
				return fmt.Errorf("status %d: %w", code, err)
			}
			return nil
		}))
	}
	time.Sleep(200 * time.Millisecond)
	close(stopStream)
	streaming.Wait()
	acked = append(acked, streamAcked...)

	// The senders retry what was refused.
	for i, rid := range refusedIDs {
		code, _, err := insts[i%2].post(t.Context(), report(org, rid, domain, 0))
		if err != nil || code != http.StatusOK {
			t.Fatalf("report %s sent again after the outage: %d %v", rid, code, err)
		}
		acked = append(acked, rid)
	}
	if err := a.mail(report(org, "outage-mail-a", domain, 0), "m"); err != nil {
		t.Errorf("report by SMTP after the outage: %v", err)
	}
	id2 := c.setMode(domain, "enforce")
	changed := time.Now()
	for _, inst := range insts {
		waitFor(t, "moat "+inst.name+" serves the change made after the outage", 10*time.Second, 5*time.Millisecond, func(ctx context.Context) error {
			return inst.served(ctx, c.acme.roots, domain, id2, "enforce")
		})
	}
	propagated := time.Since(changed)

	stored := storedReports(t, url, org)
	for _, rid := range acked {
		if stored[rid] != 1 {
			t.Errorf("report %s acknowledged, stored %d times", rid, stored[rid])
		}
	}
	if stored["outage-mail-a"] != 1 {
		t.Errorf("the report by SMTP sent again after the outage is stored %d times", stored["outage-mail-a"])
	}
	t.Logf("PostgreSQL down for %v: %d rounds of probes of 2 instances, DNS and HTTPS policy failed %d times; %d reports refused with 503 and Retry-After, %d acknowledged, SMTP codes %v; a stream of %d reports across the stop and start got %v (status: count; 0: connection error); after the restart: /readyz ready within %v, reports accepted within %v, a change served by both within %v; %d reports acknowledged in all, all stored",
		down.Round(time.Millisecond), rounds/2, o.serveFails, o.refused, len(o.acked), uniq(o.smtpRefusals), streamSent.Load(), streamCodes, ready.Round(time.Millisecond), intake.Round(time.Millisecond), propagated.Round(time.Millisecond), len(acked))
}

func uniq(codes []int) []int {
	var out []int
	seen := map[int]bool{}
	for _, c := range codes {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// TestFaultDiskFull runs an instance on SQLite in a 16 MiB tmpfs mounted in
// a mount namespace of its own, fills the tmpfs with a file, and sends
// reports: intake refuses them with a temporary failure once the disk is
// full, DNS and the HTTPS policy keep being served, and when the file is
// deleted intake accepts reports again by itself. Every report
// acknowledged is stored.
func TestFaultDiskFull(t *testing.T) {
	long(t)
	if uid := os.Geteuid(); uid != 0 {
		missing(t, "the full-disk test mounts a tmpfs in a mount namespace of its own: it needs root (running as uid %d)", uid)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		missing(t, "the full-disk test needs unshare (util-linux): %v", err)
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		missing(t, "the full-disk test needs nsenter (util-linux) to read the database in the namespace: %v", err)
	}
	if out, err := exec.Command(unshare, "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		missing(t, "unshare -m does not work here: %v %s", err, out)
	}
	t.Parallel()
	c := newCluster(t, "", time.Second)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const domain, org = "hotel.test", "Full Disk Sender"
	addrs := filepath.Join(t.TempDir(), "addrs.json")
	// The tmpfs exists only in the namespace of the process: it and
	// everything on it go when the process ends.
	script := `mount -t tmpfs -o size=16m,mode=0700 tmpfs "$1" &&
"$2" domains add ` + domain + ` --mx mx.` + domain + ` --config "$3" --data "$1" >/dev/null &&
exec "$2" serve --config "$3" --data "$1" --addrs-file "$4"`
	inst := c.run("a", exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", dir, moatBin, c.config, addrs), addrs)
	c.validateOn(inst)
	// The test reaches the tmpfs through the process's root.
	root := fmt.Sprintf("/proc/%d/root%s", inst.cmd.Process.Pid, dir)
	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil || st.Type != 0x01021994 { // TMPFS_MAGIC
		t.Fatalf("%s is not the tmpfs (type %#x): %v", root, st.Type, err)
	}
	id, err := inst.txtID(t.Context(), domain)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "moat serves "+domain, 60*time.Second, 20*time.Millisecond, func(ctx context.Context) error {
		return inst.served(ctx, c.acme.roots, domain, id, "testing")
	})

	var acked, refused []string
	n := 0
	send := func() (int, string, error) {
		n++
		rid := fmt.Sprintf("full-%d", n)
		code, retry, err := inst.post(t.Context(), report(org, rid, domain, 16<<10))
		switch {
		case err == nil && code == http.StatusOK:
			acked = append(acked, rid)
		case err == nil && code == http.StatusServiceUnavailable && retry != "":
			refused = append(refused, rid)
		default:
			t.Fatalf("report %s: %d Retry-After %q %v; want 200, or 503 with Retry-After", rid, code, retry, err)
		}
		return code, retry, err
	}
	for range 10 {
		if code, _, _ := send(); code != http.StatusOK {
			t.Fatalf("report before the disk is full: %d", code)
		}
	}

	// Fill the disk, leaving 256 KiB.
	if err := syscall.Statfs(root, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize) //nolint:gosec,unconvert // a tmpfs of 16 MiB; Bsize is int32 on some architectures
	filler := filepath.Join(root, "filler")
	if err := os.WriteFile(filler, make([]byte, max(0, free-256<<10)), 0o600); err != nil {
		t.Fatalf("fill the tmpfs (%d bytes free): %v", free, err)
	}
	before := len(acked)
	full := time.Now()
	var firstRefusal time.Duration
	for i := 0; len(refused) == 0; i++ {
		if i == 300 || time.Since(full) > 30*time.Second {
			t.Fatalf("%d reports of 16 KiB acknowledged after the disk was filled, none refused", len(acked)-before)
		}
		send()
	}
	firstRefusal = time.Since(full)
	// While the disk stays full, every answer is an acknowledgement of a
	// report stored (a small one may still fit where a transaction was
	// rolled back) or a temporary failure.
	var o outage
	var mailCodes []int
	for i := range 10 {
		if code, _, _ := send(); code == http.StatusOK {
			o.acked = append(o.acked, acked[len(acked)-1])
		}
		if err := inst.served(t.Context(), c.acme.roots, domain, id, "testing"); err != nil {
			o.serveFailed(err)
		}
		rid := fmt.Sprintf("full-mail-%d", i)
		err := inst.mail(report(org, rid, domain, 16<<10), rid)
		switch code := smtpCode(err); {
		case err == nil:
			acked = append(acked, rid)
			mailCodes = append(mailCodes, 250)
		case code == 451:
			mailCodes = append(mailCodes, code)
		default:
			t.Errorf("report %s by SMTP while the disk was full: %v; want 250 or 451", rid, err)
		}
	}
	if o.serveFails > 0 {
		t.Errorf("%d DNS or HTTPS policy answers failed while the disk was full: %q", o.serveFails, o.serveErrs)
	}
	if len(o.acked) > 5 || !slices.Contains(mailCodes, 451) {
		t.Errorf("while the disk was full, %d of 10 reports by HTTP were acknowledged, SMTP answered %v; want most refused and 451 at least once", len(o.acked), mailCodes)
	}

	if v, err := inst.metric(t.Context(), `moat_intake_reports_total{outcome="failed"}`); err != nil || v == 0 {
		t.Errorf("while the disk was full: failed reports %v in the metrics, %v; want more than 0", v, err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	recovered := waitFor(t, "intake accepts reports once space is back", 30*time.Second, 20*time.Millisecond, func(context.Context) error {
		if code, _, _ := send(); code != http.StatusOK {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
	for _, rid := range refused {
		code, _, err := inst.post(t.Context(), report(org, rid, domain, 16<<10))
		if err != nil || code != http.StatusOK {
			t.Fatalf("report %s sent again once space was back: %d %v", rid, code, err)
		}
		acked = append(acked, rid)
	}
	if err := inst.served(t.Context(), c.acme.roots, domain, id, "testing"); err != nil {
		t.Errorf("after the disk was full: %v", err)
	}

	// The CLI runs inside the process's mount namespace: SQLite resolves
	// the symbolic links of a path, /proc/PID/root included, and would
	// open an empty database outside.
	list := exec.Command(nsenter, "--target", strconv.Itoa(inst.cmd.Process.Pid), "--mount", "--",
		moatBin, "reports", "tlsrpt", "list", "--limit", "10000", "--json", "--config", c.config, "--data", dir)
	list.Env = moatEnv()
	out, err := list.Output()
	if err != nil {
		t.Fatalf("moat reports tlsrpt list in the namespace of the instance: %v", err)
	}
	var reports struct {
		Reports []struct {
			ReportID string `json:"report_id"`
		} `json:"reports"`
	}
	if err := json.Unmarshal(out, &reports); err != nil {
		t.Fatalf("reports tlsrpt list: %v\n%.500s", err, out)
	}
	stored := map[string]int{}
	for _, r := range reports.Reports {
		stored[r.ReportID]++
	}
	for _, rid := range acked {
		if stored[rid] != 1 {
			t.Errorf("report %s acknowledged, stored %d times", rid, stored[rid])
		}
	}
	t.Logf("SQLite on a 16 MiB tmpfs filled to 256 KiB free: %d more reports of 16 KiB acknowledged, the first refusal (503, Retry-After) %v after; then %d of 10 refused, DNS and HTTPS policy failed %d times, SMTP codes %v; after the filler was deleted intake accepted reports within %v; %d reports acknowledged in all (refused ones sent again), all stored",
		len(acked)-before-len(refused), firstRefusal.Round(time.Millisecond), 10-len(o.acked), o.serveFails, mailCodes, recovered.Round(time.Millisecond), len(acked))
	if logs := inst.out.String(); !strings.Contains(logs, "tlsrpt report not stored") || !strings.Contains(logs, "source=smtp") || !strings.Contains(logs, "disk is full") {
		t.Errorf("the log does not say that reports by HTTPS and SMTP were not stored because the disk is full")
	}
}

// TestFaultACMEDown makes the ACME server answer 500 to everything once
// an instance holds a certificate: the certificate it has is still
// served, the order of a new name fails and shows in the metrics
// (moat_acme_orders_total{outcome="failed"}) and the log, it is retried
// with a backoff (no request reaches the ACME server between attempts),
// and once the ACME server is back the retry obtains the certificate
// without anyone asking again.
func TestFaultACMEDown(t *testing.T) {
	long(t)
	t.Parallel()
	c := newCluster(t, pgtest.NewDatabase(t), time.Second)
	a := c.start("a")
	c.validateOn(a)
	const held, fresh = "foxtrot.test", "golf.test"
	c.addDomain(held, "testing")
	var serial string
	waitFor(t, "moat serves "+held, 60*time.Second, 20*time.Millisecond, func(ctx context.Context) error {
		_, s, err := a.policy(ctx, c.acme.roots, held)
		if err == nil {
			serial = s.Text(16)
		}
		return err
	})
	const failed, obtained = `moat_acme_orders_total{outcome="failed"}`, `moat_acme_orders_total{outcome="obtained"}`
	if v, err := a.metric(t.Context(), obtained); err != nil || v != 1 {
		t.Fatalf("%s = %v, %v; want 1", obtained, v, err)
	}

	c.acme.failing.Store(true)
	down := time.Now()
	stillServed := func() {
		t.Helper()
		_, s, err := a.policy(t.Context(), c.acme.roots, held)
		if err != nil || s.Text(16) != serial {
			t.Fatalf("the certificate held for %s while ACME is down: serial %v (had %s), %v", held, s, serial, err)
		}
	}
	stillServed()
	id2 := c.addDomain(fresh, "testing")
	waitFor(t, "moat serves the id of "+fresh, 5*time.Second, 10*time.Millisecond, func(ctx context.Context) error {
		got, err := a.txtID(ctx, fresh)
		if err == nil && got != id2 {
			err = fmt.Errorf("id %s", got)
		}
		return err
	})
	// The first fetch starts the order and waits for it; this client gives
	// up, the order goes on.
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, _, _ = a.policy(ctx, c.acme.roots, fresh)
	}()
	failedAfter := waitFor(t, "the failed order in the metrics", 30*time.Second, 100*time.Millisecond, func(ctx context.Context) error {
		v, err := a.metric(ctx, failed)
		if err == nil && v < 1 {
			err = fmt.Errorf("%s = %v", failed, v)
		}
		return err
	})
	logs := a.out.String()
	for _, want := range []string{"could not get certificate from issuer", "will retry", "retrying_in"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log says nothing of %q about the failed order", want)
		}
	}
	// Between attempts nothing reaches the ACME server, however many
	// clients ask for the name.
	reqs := c.acme.requestCount()
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		if _, _, err := a.policy(ctx, c.acme.roots, fresh); err == nil {
			t.Error("a certificate for the new name was served while ACME was down")
		}
		cancel()
		stillServed()
	}
	if n := c.acme.requestCount() - reqs; n != 0 {
		t.Errorf("%d requests reached the ACME server in the 3 s after the failed attempt, want none (backoff)", n)
	}

	c.acme.failing.Store(false)
	up := time.Now()
	retried := waitFor(t, "the order retried and obtained once ACME is back", 150*time.Second, 250*time.Millisecond, func(ctx context.Context) error {
		v, err := a.metric(ctx, obtained)
		if err == nil && v < 2 {
			err = fmt.Errorf("%s = %v", obtained, v)
		}
		return err
	})
	waitFor(t, "moat serves the new name's policy", 10*time.Second, 50*time.Millisecond, func(ctx context.Context) error {
		return a.served(ctx, c.acme.roots, fresh, id2, "testing")
	})
	stillServed()
	nFailed, _ := a.metric(t.Context(), failed)
	t.Logf("ACME answering 500: the held certificate kept being served; the new name's order failed %v after ACME went down (%s = %v, logged with its retry delay); no ACME request during the next 3 s of handshakes; ACME back %v after it went down, the retry obtained the certificate %v later, %v after the failure (certmagic's backoff: 1m, 2m, 2m, 5m, 10m, ...)",
		failedAfter.Round(time.Millisecond), failed, nFailed, up.Sub(down).Round(time.Millisecond), retried.Round(time.Millisecond), time.Since(down).Round(time.Second))
}
