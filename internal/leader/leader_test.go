package leader_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/leader"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/store/pgtest"
)

// childEnv, when set to a database URL, makes the test binary a contender
// process (see TestMain).
const childEnv = "MOAT_LEADER_CHILD"

func TestMain(m *testing.M) {
	if url := os.Getenv(childEnv); url != "" {
		os.Exit(runChild(url))
	}
	pgtest.Main(m)
}

// databases are the two stores the tests run on: each call of open opens
// another instance (its own connections) on the same database.
func databases() []struct {
	name string
	url  func(t *testing.T) string
} {
	return []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + t.TempDir() }},
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
	}
}

func open(t *testing.T, url string) store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), nil, store.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// partition is a Locker that can be cut off from the store: while cut,
// every call hangs until its context ends (a network partition, a
// frozen database connection).
type partition struct {
	leader.Locker
	cut atomic.Bool
}

func (p *partition) TryLock(ctx context.Context, name, owner string, ttl time.Duration) error {
	if p.cut.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return p.Locker.TryLock(ctx, name, owner, ttl)
}

func (p *partition) Unlock(ctx context.Context, name, owner string) error {
	if p.cut.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return p.Locker.Unlock(ctx, name, owner)
}

// overlap counts the works running at once; any moment with two is a
// failure of the election.
type overlap struct {
	running, worst atomic.Int32
	terms          atomic.Int32 // works started
	mu             sync.Mutex
	holders        []string // in order of start
}

func (o *overlap) work(name string) func(ctx context.Context) {
	return func(ctx context.Context) {
		n := o.running.Add(1)
		for {
			w := o.worst.Load()
			if n <= w || o.worst.CompareAndSwap(w, n) {
				break
			}
		}
		o.terms.Add(1)
		o.mu.Lock()
		o.holders = append(o.holders, name)
		o.mu.Unlock()
		<-ctx.Done()
		o.running.Add(-1)
	}
}

func (o *overlap) current() (string, int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.running.Load() == 0 || len(o.holders) == 0 {
		return "", o.running.Load()
	}
	return o.holders[len(o.holders)-1], o.running.Load()
}

// waitFor polls cond until it holds or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestElection: three contenders, each on its own connections to one
// database. Exactly one leads; its leadership is cut off from the store
// (renewals hang) again and again, and each time another takes over within
// about the TTL, while the cut-off one's work has stopped first: the works
// never overlap. Stopping the leader hands over at once.
func TestElection(t *testing.T) {
	t.Parallel()
	for _, db := range databases() {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			url := db.url(t)
			const ttl = 1200 * time.Millisecond
			var (
				ov      overlap
				parts   = map[string]*partition{}
				leases  = map[string]*leader.Lease{}
				cancels = map[string]context.CancelFunc{}
				wg      sync.WaitGroup
			)
			for i := range 3 {
				name := fmt.Sprintf("c%d", i)
				p := &partition{Locker: open(t, url)}
				l := leader.New(p, "test/leader", leader.Options{TTL: ttl, Owner: name})
				ctx, cancel := context.WithCancel(t.Context())
				parts[name], leases[name], cancels[name] = p, l, cancel
				wg.Go(func() { l.Run(ctx, ov.work(name)) })
			}
			defer func() {
				for _, c := range cancels {
					c()
				}
				wg.Wait()
			}()
			holder := func() string { h, _ := ov.current(); return h }
			waitFor(t, 3*ttl, "a first leader", func() bool { return holder() != "" })

			for round := range 4 {
				old := holder()
				parts[old].cut.Store(true)
				stopped := waitFor(t, ttl, "the cut-off leader stops its work", func() bool { return !leases[old].Leading() })
				took := waitFor(t, 3*ttl, "another leader", func() bool { h := holder(); return h != "" && h != old })
				t.Logf("round %d: %s cut off; its work stopped after %v, %s leads %v later", round, old,
					stopped.Round(time.Millisecond), holder(), took.Round(time.Millisecond))
				parts[old].cut.Store(false)
			}

			// A graceful stop releases the lease: the next takes over
			// within one attempt period (TTL/3), not the TTL.
			old := holder()
			start := time.Now()
			cancels[old]()
			waitFor(t, ttl, "a leader after a graceful stop", func() bool { h := holder(); return h != "" && h != old })
			t.Logf("after %s stopped, %s leads %v later", old, holder(), time.Since(start).Round(time.Millisecond))

			if w := ov.worst.Load(); w != 1 {
				t.Errorf("%d works ran at once, want 1 at most", w)
			}
			leading := 0
			for _, l := range leases {
				if l.Leading() {
					leading++
				}
			}
			if leading != 1 {
				t.Errorf("%d contenders say they lead, want 1", leading)
			}
		})
	}
}

// TestRenewalError: a renewal that fails (the database refuses) ends the
// leadership at once, and the contender leads again once it can.
func TestRenewalError(t *testing.T) {
	t.Parallel()
	url := "sqlite:" + t.TempDir()
	st := open(t, url)
	f := &failing{Locker: st}
	var changes []bool
	var mu sync.Mutex
	l := leader.New(f, "test/leader", leader.Options{TTL: 600 * time.Millisecond, OnChange: func(b bool) {
		mu.Lock()
		changes = append(changes, b)
		mu.Unlock()
	}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	var ov overlap
	go func() { l.Run(ctx, ov.work("x")); close(done) }()
	waitFor(t, 2*time.Second, "leading", l.Leading)
	f.fail.Store(true)
	waitFor(t, time.Second, "leadership ends on a failed renewal", func() bool { return !l.Leading() })
	f.fail.Store(false)
	waitFor(t, 2*time.Second, "leading again", l.Leading)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{true, false, true, false}; fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Errorf("OnChange calls %v, want %v", changes, want)
	}
	// Released on stop.
	if err := st.TryLock(t.Context(), "test/leader", "someone else", time.Minute); err != nil {
		t.Errorf("the lease after Run returned: %v, want it free", err)
	}
}

type failing struct {
	leader.Locker
	fail atomic.Bool
}

func (f *failing) TryLock(ctx context.Context, name, owner string, ttl time.Duration) error {
	if f.fail.Load() {
		return errors.New("connection refused")
	}
	return f.Locker.TryLock(ctx, name, owner, ttl)
}

// TestJobs: a job runs on the leader at once, then every period; a new
// leader runs it when the last run recorded by the previous one is due,
// not before.
func TestJobs(t *testing.T) {
	t.Parallel()
	st := open(t, "sqlite:"+t.TempDir())
	var (
		mu   sync.Mutex
		runs []time.Time
	)
	job := leader.Job{Name: "test", Every: 400 * time.Millisecond, Run: func(context.Context) error {
		mu.Lock()
		runs = append(runs, time.Now())
		mu.Unlock()
		return nil
	}}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(runs) }
	// The leadership ends as the third run finishes: that run still
	// counts as the last one.
	ctx, cancel := context.WithCancel(t.Context())
	first := job
	first.Run = func(c context.Context) error {
		_ = job.Run(c)
		if count() == 3 {
			cancel()
		}
		return nil
	}
	done := make(chan struct{})
	go func() { leader.RunJobs(ctx, nil, st, []leader.Job{first}); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("RunJobs did not return 5 s after the leadership ended (%d runs)", count())
	}
	stopped := time.Now()
	n := count()
	if n != 3 {
		t.Fatalf("%d runs before the leadership ended, want 3", n)
	}

	// Another leader, at once: the job is not due yet.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	done = make(chan struct{})
	go func() { leader.RunJobs(ctx, nil, st, []leader.Job{job}); close(done) }()
	waitFor(t, 2*time.Second, "a run by the next leader", func() bool { return count() > n })
	mu.Lock()
	next := runs[n]
	last := runs[n-1]
	mu.Unlock()
	if next.Sub(last) < job.Every-20*time.Millisecond {
		t.Errorf("the next leader ran the job %v after the last run (and %v after taking over), want at least %v",
			next.Sub(last), next.Sub(stopped), job.Every)
	}
	cancel()
	<-done
}

// TestKillFailover: contenders in child processes on PostgreSQL; the
// leading one is killed (SIGKILL, no release) and another takes over
// within about the TTL; never do two children say they lead at once.
func TestKillFailover(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("child processes: skipped with -short")
	}
	url := pgtest.NewDatabase(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	type event struct {
		child   int
		leading bool
		at      time.Time
	}
	events := make(chan event, 100)
	var procs []*exec.Cmd
	for i := range 3 {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+url, fmt.Sprintf("MOAT_LEADER_OWNER=child%d", i))
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				switch sc.Text() {
				case "leading":
					events <- event{i, true, time.Now()}
				case "not leading":
					events <- event{i, false, time.Now()}
				}
			}
		}()
	}
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	})
	leading := map[int]bool{}
	next := func(d time.Duration) event {
		t.Helper()
		select {
		case e := <-events:
			leading[e.child] = e.leading
			n := 0
			for _, l := range leading {
				if l {
					n++
				}
			}
			if n > 1 {
				t.Fatalf("%d children lead at once: %v", n, leading)
			}
			return e
		case <-time.After(d):
			t.Fatalf("no leadership change within %v", d)
		}
		return event{}
	}
	const ttl = childTTL
	e := next(30 * time.Second)
	if !e.leading {
		t.Fatalf("first event: child %d stopped leading", e.child)
	}
	for range 2 {
		killed := e.child
		if err := procs[killed].Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		leading[killed] = false
		e = next(3 * ttl)
		if !e.leading || e.child == killed {
			t.Fatalf("after killing child %d: child %d leading=%v", killed, e.child, e.leading)
		}
		took := e.at.Sub(at)
		t.Logf("child %d killed; child %d leads %v later (TTL %v)", killed, e.child, took.Round(time.Millisecond), ttl)
		if took > ttl+ttl/3+time.Second {
			t.Errorf("fail-over took %v, want about the TTL %v", took, ttl)
		}
	}
}

// childTTL is the lease TTL of the child processes.
const childTTL = 2 * time.Second

// runChild is a contender process: it prints "leading" and "not leading"
// as its leadership changes, until killed.
func runChild(url string) int {
	ctx := context.Background()
	st, err := store.Open(ctx, nil, store.Options{URL: url})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	defer func() { _ = st.Close() }()
	var mu sync.Mutex
	l := leader.New(st, "test/leader", leader.Options{TTL: childTTL, Owner: os.Getenv("MOAT_LEADER_OWNER"),
		OnChange: func(b bool) {
			mu.Lock()
			defer mu.Unlock()
			if b {
				fmt.Println("leading")
			} else {
				fmt.Println("not leading")
			}
		}})
	l.Run(ctx, func(ctx context.Context) { <-ctx.Done() })
	return 0
}
