package intake

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

const durabilityEnv = "MOAT_INTAKE_DURABILITY_DIR"

// TestDurabilityChild is the process TestDurability kills: an Ingester
// and the HTTP intake on a real SQLite store, serving until killed.
func TestDurabilityChild(t *testing.T) {
	dir := os.Getenv(durabilityEnv)
	if dir == "" {
		t.Skip("helper process of TestDurability; runs only when re-executed by it")
	}
	st := openStoreAt(t, dir)
	ing := NewIngester(nil, st, nil, IngestOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = ing.Run(ctx) }()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: NewHTTPHandler(nil, ing, HTTPOpts{RatePerIP: -1}), ReadHeaderTimeout: 10 * time.Second}
	// Stop when the parent goes away without killing this process (its
	// end of the stdin pipe closes).
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	fmt.Printf("ADDR %s\n", l.Addr())
	// Serve until the parent kills this process.
	_ = srv.Serve(l)
}

// TestDurability checks the promise of intake: a report acknowledged with
// 200 survives a SIGKILL of the server at any moment.
func TestDurability(t *testing.T) {
	t.Parallel()
	if os.Getenv(durabilityEnv) != "" {
		t.Skip("inside the child")
	}
	if testing.Short() {
		t.Skip("-short: the SIGKILL durability test starts and kills a child process; make test runs it")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), durabilityEnv+"="+dir)
	stdin, err := cmd.StdinPipe() // held open: the child ends when it closes
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child printed no address (stderr: %s)", stderr.String())
	}

	const (
		workers    = 8
		maxReports = 2000
		killAfter  = 300 // acknowledged reports before the kill
		maxTime    = 10 * time.Second
	)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		acked    = map[string]bool{}
		inFlight = map[string]bool{}
		killed   = make(chan struct{})
		killOnce sync.Once
	)
	kill := func() {
		killOnce.Do(func() {
			_ = cmd.Process.Kill() // SIGKILL on Unix
			close(killed)
		})
	}
	stopAt := time.Now().Add(maxTime)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > maxReports || time.Now().After(stopAt) {
					return
				}
				select {
				case <-killed:
					return
				default:
				}
				id := fmt.Sprintf("durable-%d", n)
				mu.Lock()
				inFlight[id] = true
				mu.Unlock()
				resp, err := client.Post("http://"+addr+ReportPath, "application/tlsrpt+json",
					bytes.NewReader(reportJSON("Durability Test", id, "a.example", n, 0)))
				if err != nil {
					continue // killed: the report stays in flight
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("report %s: status %d", id, resp.StatusCode)
					continue
				}
				mu.Lock()
				delete(inFlight, id)
				acked[id] = true
				done := len(acked)
				mu.Unlock()
				if done >= killAfter {
					kill()
				}
			}
		}()
	}
	wg.Wait()
	kill() // when the limits were reached first
	_ = cmd.Wait()

	st := openStoreAt(t, dir)
	stored := map[string]bool{}
	for off := 0; ; off += 500 {
		page, err := st.TLSRPTReports(context.Background(), store.ReportFilter{Limit: 500, Offset: off})
		if err != nil {
			t.Fatalf("list stored reports: %v", err)
		}
		for _, r := range page {
			stored[r.ReportID] = true
		}
		if len(page) < 500 {
			break
		}
	}
	lost := 0
	for id := range acked {
		if !stored[id] {
			lost++
			if lost <= 10 {
				t.Errorf("report %s was acknowledged with 200 but is not in the store after SIGKILL", id)
			}
		}
	}
	committedInFlight := 0
	for id := range inFlight {
		if stored[id] {
			committedInFlight++
		}
	}
	for id := range stored {
		if !acked[id] && !inFlight[id] {
			t.Errorf("stored report %s was never sent", id)
		}
	}
	t.Logf("acknowledged %d reports, %d in flight at the kill (%d of them committed anyway), %d stored, %d lost",
		len(acked), len(inFlight), committedInFlight, len(stored), lost)
	if len(acked) < killAfter {
		t.Errorf("only %d reports acknowledged before the limits; the kill did not happen mid-stream", len(acked))
	}
}
