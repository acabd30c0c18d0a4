package intake

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func zipped(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// lf turns CRLF into LF, as mbox files and Maildirs store mail.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

func TestImport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rep := func(id string) []byte { return reportJSON("Importer", id, "a.example", 4, 1) }
	mail := func(id string) []byte { return lf(reportMail("application/tlsrpt+gzip", gzipped(t, rep(id)))) }
	writeFile(t, filepath.Join(dir, "a.json"), rep("a"))
	writeFile(t, filepath.Join(dir, "b.json.gz"), gzipped(t, rep("b")))
	writeFile(t, filepath.Join(dir, "c.zip"), zipped(t, "c.json", rep("c")))
	writeFile(t, filepath.Join(dir, "d.eml"), mail("d"))
	writeFile(t, filepath.Join(dir, "sub", "dup.json"), rep("a")) // a duplicate of a.json
	writeFile(t, filepath.Join(dir, "sub", "broken.json"), []byte(`{"organization-name": "X", "policies": 7}`))
	writeFile(t, filepath.Join(dir, "sub", "dmarc.xml"), []byte(`<?xml version="1.0"?><feedback></feedback>`))
	writeFile(t, filepath.Join(dir, "sub", "notes.txt"), []byte("remember the milk\n"))
	writeFile(t, filepath.Join(dir, "sub", "package.json"), []byte(`{"name": "not-a-report", "version": "1.0.0"}`))
	writeFile(t, filepath.Join(dir, ".hidden", "h.json"), rep("hidden"))
	var mbox bytes.Buffer
	mbox.WriteString("From tlsrpt@sender.example Mon Nov  2 10:00:00 2026\n")
	mbox.Write(mail("m1"))
	mbox.WriteString("\nFrom someone@sender.example Mon Nov  2 10:00:01 2026\n")
	mbox.Write(lf(plainMail("hello\n>From the quoted line\nbye")))
	mbox.WriteString("\nFrom tlsrpt@sender.example Mon Nov  2 10:00:02 2026\n")
	mbox.Write(mail("m3"))
	writeFile(t, filepath.Join(dir, "archive.mbox"), mbox.Bytes())
	md := filepath.Join(dir, "Maildir")
	writeFile(t, filepath.Join(md, "cur", "1:2,S"), mail("md1"))
	writeFile(t, filepath.Join(md, "new", "2"), mail("md2"))
	writeFile(t, filepath.Join(md, "tmp", "3"), mail("md-tmp")) // delivery in progress: skipped
	writeFile(t, filepath.Join(md, "dovecot-uidlist"), []byte("3 V1 N3\n"))
	writeFile(t, filepath.Join(md, ".Reports", "cur", "4:2,"), mail("md4"))
	if err := os.MkdirAll(filepath.Join(md, ".Reports", "new"), 0o755); err != nil {
		t.Fatal(err)
	}

	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{})
	var progress []ImportProgress
	stats, err := Import(context.Background(), ing, []string{dir, filepath.Join(dir, "missing.json")},
		ImportOpts{Progress: func(p ImportProgress) { progress = append(progress, p) }, ProgressInterval: time.Hour})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	// 13 files read: a, b, c, d, dup, broken, dmarc, notes, package.json,
	// archive.mbox and 3 Maildir messages (tmp/ skipped); the missing one
	// is an error.
	want := ImportStats{Files: 13, Messages: 7, Reports: 11, Duplicates: 1, Invalid: 1,
		Kinds: map[string]int{store.KindTLSRPT: 10, store.KindDMARC: 1}}
	gotCounts := stats
	gotCounts.NotReports, gotCounts.Errors, gotCounts.Stored = nil, nil, nil
	if !reflect.DeepEqual(gotCounts, want) {
		t.Errorf("stats %+v, want %+v", gotCounts, want)
	}
	notReports := map[string]string{}
	for _, is := range stats.NotReports {
		notReports[filepath.Base(is.Path)] = is.Reason
	}
	for name, why := range map[string]string{"notes.txt": "text", "archive.mbox#2": "text/plain",
		"package.json": "without any TLS-RPT field"} {
		if !strings.Contains(notReports[name], why) {
			t.Errorf("not-report %s: %q, want a reason naming %q (all: %v)", name, notReports[name], why, stats.NotReports)
		}
	}
	if len(stats.NotReports) != 3 {
		t.Errorf("not reports %v, want 3 (sub/dmarc.xml is a DMARC report)", stats.NotReports)
	}
	if len(stats.Errors) != 1 || !strings.HasSuffix(stats.Errors[0].Path, "missing.json") {
		t.Errorf("errors %v, want the missing file", stats.Errors)
	}
	if n := len(progress); n != 2 || !progress[n-1].Done || progress[n-1].FilesDone != 13 || progress[n-1].Reports != 12 {
		t.Errorf("progress calls %+v, want the first and a final one with 13 files done and 12 reports", progress)
	}

	// Each report names its file; mbox messages their index.
	list, err := st.TLSRPTReports(context.Background(), store.ReportFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	details := map[string]bool{}
	for _, r := range list {
		if r.Source != SourceImport {
			t.Errorf("report %d source %q", r.ID, r.Source)
		}
		details[strings.TrimPrefix(r.SourceDetail, dir+string(filepath.Separator))] = true
	}
	// a.json and sub/dup.json hold the same report: files are read in
	// parallel, so either may be the one stored, never both.
	if a, dup := details["a.json"], details[filepath.Join("sub", "dup.json")]; a == dup {
		t.Errorf("report a stored from a.json: %v, from sub/dup.json: %v; want exactly one", a, dup)
	}
	for _, d := range []string{"archive.mbox#1", "archive.mbox#3", filepath.Join("Maildir", ".Reports", "cur", "4:2,")} {
		if !details[d] {
			t.Errorf("no report from %s (have %v)", d, details)
		}
	}
	if details[filepath.Join("Maildir", "tmp", "3")] || details[filepath.Join(".hidden", "h.json")] {
		t.Errorf("a skipped file was imported: %v", details)
	}
}

func TestImportSymlinkedDir(t *testing.T) {
	t.Parallel()
	target := t.TempDir()
	writeFile(t, filepath.Join(target, "r.json"), reportJSON("O", "linked", "a.example", 1, 0))
	link := filepath.Join(t.TempDir(), "reports")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("cannot create a symbolic link: %v", err)
	}
	ing := startIngester(t, openStore(t), nil, IngestOpts{})
	stats, err := Import(context.Background(), ing, []string{link}, ImportOpts{})
	if err != nil || stats.Reports != 1 {
		t.Errorf("import of a linked directory: %+v, %v; want 1 report", stats, err)
	}
}

func TestMboxSplit(t *testing.T) {
	t.Parallel()
	mbox := "From a@b Mon Nov  2 10:00:00 2026\n" +
		"Subject: one\n\nbody\nFrom inside a paragraph stays\n>From quoted\n>>From twice quoted\n\n" +
		"From c@d Mon Nov  2 10:00:01 2026\n" +
		"Subject: two\n\nlast line\n"
	im := &importer{opts: ImportOpts{}.withDefaults()}
	jobs := make(chan job, 10)
	if err := im.mbox(context.Background(), "x.mbox", bufio.NewReader(strings.NewReader(mbox)), jobs); err != nil {
		t.Fatal(err)
	}
	close(jobs)
	var got []string
	for j := range jobs {
		if !j.message {
			t.Errorf("%s not a message", j.path)
		}
		got = append(got, j.path+"|"+string(j.data))
	}
	want := []string{
		"x.mbox#1|Subject: one\n\nbody\nFrom inside a paragraph stays\nFrom quoted\n>From twice quoted\n",
		"x.mbox#2|Subject: two\n\nlast line",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("messages:\n%q\nwant\n%q", got, want)
	}
}

func TestImportStopsOnStoreFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, id := range []string{"1", "2", "3"} {
		writeFile(t, filepath.Join(dir, id+".json"), reportJSON("O", id, "a.example", 1, 0))
	}
	fs := &fakeStore{fail: func([]*store.TLSRPTReport) error { return errors.New("disk full") }}
	ing := startIngester(t, fs, nil, IngestOpts{})
	_, err := Import(context.Background(), ing, []string{dir}, ImportOpts{Workers: 1})
	if !errors.Is(err, ErrStore) {
		t.Errorf("Import over a failing store: %v, want ErrStore", err)
	}
}
