package intake

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
)

// ImportOpts tunes Import. The zero value is usable.
type ImportOpts struct {
	// Progress, when set, is called at most every ProgressInterval while
	// the import runs, and once more at the end with Done set. Calls are
	// serialized.
	Progress func(ImportProgress)
	// ProgressInterval is the least time between two Progress calls. Zero
	// means 200 ms.
	ProgressInterval time.Duration
	// MaxFileBytes is the largest single report or message file read, and
	// the largest message of an mbox; larger ones are listed in Errors.
	// Zero means 64 MiB.
	MaxFileBytes int64
	// Workers is the number of reports submitted at once (the Ingester
	// commits concurrent submissions together). Zero means 16.
	Workers int
}

func (o ImportOpts) withDefaults() ImportOpts {
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 200 * time.Millisecond
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = 64 << 20
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	return o
}

// ImportProgress is the state of a running import.
type ImportProgress struct {
	FilesDone  int    // files read completely
	FilesTotal int    // files found (known once the paths are walked)
	Messages   int    // mail messages read (files and mbox entries)
	Reports    int    // reports stored or found already stored
	Current    string // the file being read
	Done       bool   // the last call
}

// ImportIssue names an input that was not stored, and why.
type ImportIssue struct {
	Path   string // file path, with "#N" for the Nth message of an mbox
	Reason string
}

// ImportStats says what an import did.
type ImportStats struct {
	Files      int // files read
	Messages   int // mail messages read (single files and mbox entries)
	Reports    int // reports newly stored, invalid ones and conflicts included
	Duplicates int // reports stored before (not stored again)
	Invalid    int // of Reports: stored but could not be parsed
	Conflicts  int // of Reports: DMARC reports kept aside, another one holding their identity
	// Kinds counts the reports newly stored by kind (store.KindTLSRPT,
	// KindDMARC, KindDMARCFailure).
	Kinds map[string]int
	// Stored says, per report found (in input order within a file), what
	// became of it.
	Stored []ImportedReport
	// NotReports lists the inputs that hold no report (an ordinary mail,
	// an abuse report, a stray file); they are not stored.
	NotReports []ImportIssue
	// Errors lists the inputs that could not be read or were too large.
	Errors []ImportIssue
}

// ImportedReport is what became of one report of an import.
type ImportedReport struct {
	Path    string // file path, with "#N" for the Nth message of an mbox
	Kind    string // store.KindTLSRPT, KindDMARC or KindDMARCFailure
	ID      int64  // the stored report (the earlier one for a duplicate)
	Outcome string // OutcomeStored, OutcomeInvalid, OutcomeConflict or OutcomeDuplicate
	// ConflictOf is the report holding the identity of one kept aside.
	ConflictOf int64
	Error      string // why it is invalid
	Org        string
	ReportID   string
	Domain     string // of DMARC reports: the policy (or reported) domain
	Records    int64  // of DMARC aggregate reports
	Messages   int64  // of DMARC reports: the sum of the records' counts (a failure report: incidents)
}

// Import stores the reports found under paths, TLS-RPT and DMARC
// (aggregate and failure): report files (.json, .json.gz, .xml, .xml.gz,
// .gz, .zip), single messages (.eml), mbox files (split on "From " lines,
// mboxrd ">From " quoting undone), Maildir folders (cur/ and new/, with
// Maildir++ subfolders) and directories, walked recursively (hidden
// entries skipped unless named). A file's kind is recognized by its
// content (JSON: TLS-RPT; XML: DMARC; a mail: see Ingester.SubmitMail);
// its name only breaks the tie for compressed data that does not open.
// Each report goes through ing with Source "import" and SourceDetail the
// file path ("path#N" for the Nth message of an mbox).
//
// Inputs that are not reports, or cannot be read, are listed in the stats
// and the import goes on. It stops with an error when ctx is done or the
// store fails (the stats then say what was stored until then).
func Import(ctx context.Context, ing *Ingester, paths []string, opts ImportOpts) (ImportStats, error) {
	opts = opts.withDefaults()
	im := &importer{ing: ing, opts: opts}
	im.stats.Kinds = map[string]int{}
	var files []string
	for _, p := range paths {
		fs, err := collect(p)
		if err != nil {
			im.stats.Errors = append(im.stats.Errors, ImportIssue{Path: p, Reason: fileReason(err)})
		}
		files = append(files, fs...)
	}
	im.prog.FilesTotal = len(files)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	im.cancel = cancel
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				im.submit(ctx, j)
			}
		}()
	}
	func() {
		defer close(jobs)
		for _, f := range files {
			if ctx.Err() != nil {
				return
			}
			im.file(ctx, f, jobs)
			im.update(func(p *ImportProgress) { p.FilesDone++; p.Current = "" })
		}
	}()
	wg.Wait()

	im.mu.Lock()
	defer im.mu.Unlock()
	im.prog.Done = true
	if opts.Progress != nil {
		opts.Progress(im.prog)
	}
	sortIssues(im.stats.NotReports)
	sortIssues(im.stats.Errors)
	sort.SliceStable(im.stats.Stored, func(i, j int) bool { return im.stats.Stored[i].Path < im.stats.Stored[j].Path })
	if err := context.Cause(ctx); err != nil {
		return im.stats, err
	}
	return im.stats, nil
}

func sortIssues(is []ImportIssue) {
	sort.SliceStable(is, func(i, j int) bool { return is[i].Path < is[j].Path })
}

// job is one input to submit: a message or a report.
type job struct {
	path    string
	data    []byte
	message bool
}

type importer struct {
	ing    *Ingester
	opts   ImportOpts
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	stats    ImportStats
	prog     ImportProgress
	lastProg time.Time
}

// update changes the progress under the lock and reports it when due.
func (im *importer) update(fn func(*ImportProgress)) {
	im.mu.Lock()
	defer im.mu.Unlock()
	fn(&im.prog)
	if im.opts.Progress != nil && time.Since(im.lastProg) >= im.opts.ProgressInterval {
		im.lastProg = time.Now()
		im.opts.Progress(im.prog)
	}
}

// fileReason is the reason of a file system error without the path, which
// the issue names already ("no such file or directory", not "stat /x: no
// such file or directory").
func fileReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (im *importer) issue(errs bool, path, reason string) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if errs {
		im.stats.Errors = append(im.stats.Errors, ImportIssue{Path: path, Reason: reason})
	} else {
		im.stats.NotReports = append(im.stats.NotReports, ImportIssue{Path: path, Reason: reason})
	}
}

// file reads one file and queues what it holds.
func (im *importer) file(ctx context.Context, path string, jobs chan<- job) {
	im.update(func(p *ImportProgress) { p.Current = path })
	im.mu.Lock()
	im.stats.Files++
	im.mu.Unlock()
	f, err := os.Open(path)
	if err != nil {
		im.issue(true, path, fileReason(err))
		return
	}
	defer func() { _ = f.Close() }() // read only
	br := bufio.NewReaderSize(f, 64<<10)
	start, _ := br.Peek(512)
	if bytes.HasPrefix(start, []byte("From ")) {
		if err := im.mbox(ctx, path, br, jobs); err != nil {
			im.issue(true, path, err.Error())
		}
		return
	}
	data, err := io.ReadAll(io.LimitReader(br, im.opts.MaxFileBytes+1))
	if err != nil {
		im.issue(true, path, "cannot read: "+fileReason(err))
		return
	}
	if int64(len(data)) > im.opts.MaxFileBytes {
		im.issue(true, path, fmt.Sprintf("file larger than %d bytes", im.opts.MaxFileBytes))
		return
	}
	j := job{path: path, data: data}
	switch {
	case compressed(data) != "" || describe(data) == "JSON" || peek(data) == "xml" || strings.HasSuffix(strings.ToLower(path), ".xml"):
	case looksLikeMessage(data):
		j.message = true
	default:
		im.issue(false, path, "is "+describe(data)+", not a report, a mail message or an mbox")
		return
	}
	select {
	case jobs <- j:
	case <-ctx.Done():
	}
}

// mbox splits an mbox file into messages: a line starting with "From " at
// the start of the file or after an empty line begins a message; the
// mboxrd quoting (">From ", ">>From ", ...) loses one '>'.
func (im *importer) mbox(ctx context.Context, path string, br *bufio.Reader, jobs chan<- job) error {
	var msg bytes.Buffer
	n, skip, prevEmpty := 0, false, true
	flush := func() bool {
		if n == 0 {
			return true
		}
		if skip {
			im.issue(true, fmt.Sprintf("%s#%d", path, n), fmt.Sprintf("message larger than %d bytes", im.opts.MaxFileBytes))
			return true
		}
		data := bytes.Clone(msg.Bytes())
		// The empty line before the next "From " belongs to the mbox.
		data = bytes.TrimSuffix(data, []byte("\n"))
		select {
		case jobs <- job{path: fmt.Sprintf("%s#%d", path, n), data: data, message: true}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		line, err := readLine(br, im.opts.MaxFileBytes)
		if len(line) > 0 {
			switch {
			case prevEmpty && bytes.HasPrefix(line, []byte("From ")):
				if !flush() {
					return nil
				}
				n++
				msg.Reset()
				skip = false
			case skip:
			default:
				if q := bytes.TrimLeft(line, ">"); len(q) < len(line) && bytes.HasPrefix(q, []byte("From ")) {
					line = line[1:]
				}
				if int64(msg.Len()+len(line)) > im.opts.MaxFileBytes {
					skip = true
					msg.Reset()
				} else {
					msg.Write(line)
				}
			}
			prevEmpty = len(bytes.TrimRight(line, "\r\n")) == 0
		}
		if errors.Is(err, io.EOF) {
			flush()
			return nil
		}
		if err != nil {
			return fmt.Errorf("read mbox after message %d: %w", n, err)
		}
	}
}

// readLine returns the next line with its newline; a line longer than
// limit is returned in pieces of at most limit bytes.
func readLine(br *bufio.Reader, limit int64) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) && int64(len(out)) < limit {
			continue
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return out, nil
		}
		return out, err
	}
}

// looksLikeMessage says whether data starts with an RFC 5322 header field.
func looksLikeMessage(data []byte) bool {
	line, _, _ := bytes.Cut(head(data, 1000), []byte("\n"))
	name, _, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(name) == 0 {
		return false
	}
	for _, c := range name {
		// RFC 5322 §3.6.8: field names are printable ASCII but colon.
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// submit stores one job's report and counts the outcome.
func (im *importer) submit(ctx context.Context, j job) {
	if ctx.Err() != nil {
		return
	}
	base := Submission{Source: SourceImport, SourceDetail: j.path}
	var (
		res []Result
		err error
	)
	switch {
	case j.message:
		im.update(func(p *ImportProgress) { p.Messages++ })
		im.mu.Lock()
		im.stats.Messages++
		im.mu.Unlock()
		res, err = im.ing.SubmitMail(ctx, base, j.data, MailOpts{})
	case fileKind(j.path, j.data) == store.KindDMARC:
		sub := base
		sub.Data = j.data
		var r Result
		if r, err = im.ing.SubmitDMARC(ctx, sub); err == nil {
			res = []Result{r}
		}
	default:
		if ok, why := im.ing.looksLikeReport(j.data); !ok {
			im.issue(false, j.path, why)
			return
		}
		sub := base
		sub.Data = j.data
		var r Result
		if r, err = im.ing.Submit(ctx, sub); err == nil {
			res = []Result{r}
		}
	}
	switch {
	case errors.Is(err, ErrNotReport):
		im.issue(false, j.path, err.Error())
		return
	case errors.Is(err, ErrTooLarge), errors.Is(err, tlsrpt.ErrTooLarge):
		im.issue(true, j.path, err.Error())
		return
	case err != nil:
		im.cancel(fmt.Errorf("intake: import stopped at %s: %w", j.path, err))
		return
	}
	im.mu.Lock()
	for _, r := range res {
		ir := ImportedReport{Path: j.path, Kind: r.Kind, ID: r.ID, Outcome: OutcomeStored, ConflictOf: r.ConflictOf, Error: r.Error,
			Org: r.OrganizationName, ReportID: r.ReportID, Domain: r.Domain, Records: r.Records, Messages: r.Messages}
		switch {
		case r.Duplicate:
			ir.Outcome = OutcomeDuplicate
		case r.ConflictOf != 0:
			ir.Outcome = OutcomeConflict
		case r.Status == store.ReportInvalid:
			ir.Outcome = OutcomeInvalid
		}
		im.stats.Stored = append(im.stats.Stored, ir)
		switch ir.Outcome {
		case OutcomeDuplicate:
			im.stats.Duplicates++
			continue
		case OutcomeConflict:
			im.stats.Conflicts++
		case OutcomeInvalid:
			im.stats.Invalid++
		}
		im.stats.Reports++
		im.stats.Kinds[r.Kind]++
	}
	im.mu.Unlock()
	im.update(func(p *ImportProgress) { p.Reports += len(res) })
}

// fileKind says which kind of report a report file holds (not a mail): by
// its content once decompressed (JSON: TLS-RPT; XML or nothing: DMARC),
// and, for compressed data that does not open, by its name (".json":
// TLS-RPT; ".xml" or ".zip": DMARC, whose reports are zipped, where TLS
// reports are gzipped; else TLS-RPT).
func fileKind(path string, data []byte) string {
	name := strings.ToLower(path)
	switch peek(data) {
	case "json":
		return store.KindTLSRPT
	case "corrupt":
		if !strings.Contains(name, ".json") && (strings.Contains(name, ".xml") || strings.HasSuffix(name, ".zip")) {
			return store.KindDMARC
		}
		return store.KindTLSRPT
	}
	return store.KindDMARC
}

// collect lists the files under path: path itself when it is a file, the
// message files of a Maildir, or the files of a directory tree.
func collect(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	root := path
	if li, err := os.Lstat(path); err == nil && li.Mode()&fs.ModeSymlink != 0 {
		root = path + string(filepath.Separator) // walk the directory a named link points to
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p == root {
				return nil
			}
			if isMaildir(filepath.Dir(p)) {
				// In a Maildir only cur/, new/ and Maildir++ subfolders
				// (".Name") hold messages; tmp/ holds deliveries in
				// progress.
				if name == "cur" || name == "new" || (strings.HasPrefix(name, ".") && isMaildir(p)) {
					return nil
				}
				return fs.SkipDir
			}
			if strings.HasPrefix(name, ".") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if isMaildir(filepath.Dir(p)) {
			return nil // Maildir metadata (dovecot-uidlist, subscriptions...)
		}
		if strings.HasPrefix(name, ".") {
			return nil
		}
		files = append(files, p)
		return nil
	})
	return files, err
}

// isMaildir says whether dir has the cur/ and new/ subdirectories of a
// Maildir.
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}
