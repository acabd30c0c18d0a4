package bimi

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Problem is one finding of CheckSVG.
type Problem struct {
	Severity string // "error" or "warning"
	Message  string // names the element or attribute, with its line
}

// Limits of CheckSVG.
const (
	// MaxSVGSize is the largest indicator the BIMI Group's implementation
	// guidance recommends (32 KiB); receivers may refuse larger ones.
	MaxSVGSize = 32 << 10
	// maxCheckSize bounds what CheckSVG parses at all, compressed or not.
	maxCheckSize = 1 << 20
	maxDepth     = 256
	maxTokens    = 200_000
)

const svgNS = "http://www.w3.org/2000/svg"

// CheckSVG checks the basics of the SVG Tiny Portable/Secure profile that
// BIMI indicators must follow (draft §4.2.2 defers to it): well-formed
// XML; a root <svg> in the SVG namespace with version="1.2" and
// baseProfile="tiny-ps", without x= or y=; a <title> child; no <script>,
// no event handler attributes, no javascript: URIs; no references outside
// the document (href or url() to anything but a local #id); no <image>
// (raster) or other embedded content; no animation elements; size within
// 32 KiB (the BIMI Group's recommendation); a square viewBox (a warning).
// SVGZ (gzip-compressed SVG, draft §4.2.2) is decompressed first.
//
// It is not a full validator against the RelaxNG schema of SVG Tiny PS:
// it catches what receivers are known to refuse.
func CheckSVG(data []byte) []Problem {
	var c checker
	c.check(data)
	return c.problems
}

type checker struct {
	problems []Problem
}

func (c *checker) errorf(format string, args ...any) {
	c.problems = append(c.problems, Problem{Severity: "error", Message: fmt.Sprintf(format, args...)})
}

func (c *checker) warnf(format string, args ...any) {
	c.problems = append(c.problems, Problem{Severity: "warning", Message: fmt.Sprintf(format, args...)})
}

func (c *checker) check(data []byte) {
	if len(data) > MaxSVGSize {
		c.errorf("size %d bytes is over the 32 KiB (%d bytes) the BIMI Group recommends for indicators; receivers may refuse it", len(data), MaxSVGSize)
	}
	if len(data) > maxCheckSize {
		c.errorf("size %d bytes is over %d bytes: not checked further", len(data), maxCheckSize)
		return
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			c.errorf("SVGZ: not valid gzip: %s", err.Error())
			return
		}
		raw, err := io.ReadAll(io.LimitReader(zr, maxCheckSize+1))
		if err != nil {
			c.errorf("SVGZ: cannot decompress: %s", err.Error())
			return
		}
		if len(raw) > maxCheckSize {
			c.errorf("SVGZ: decompresses to over %d bytes: not checked further", maxCheckSize)
			return
		}
		data = raw
	}
	if len(bytes.TrimSpace(data)) == 0 {
		c.errorf("empty document: not an SVG")
		return
	}
	c.walk(data)
}

// walk parses the document and checks every element.
func (c *checker) walk(data []byte) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		return nil, fmt.Errorf("encoding %q: only UTF-8 is supported", charset)
	}
	var (
		depth     int
		tokens    int
		sawRoot   bool
		sawTitle  bool
		titleText strings.Builder
		inTitle   bool
		inStyle   bool
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := d.InputPos()
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				c.errorf("not well-formed XML: line %d: %s", se.Line, se.Msg)
			} else {
				c.errorf("not well-formed XML: line %d: %s", line, err.Error())
			}
			return
		}
		if tokens++; tokens > maxTokens {
			c.errorf("more than %d XML tokens: not checked further", maxTokens)
			return
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				c.errorf("elements nested deeper than %d at line %d: not checked further", maxDepth, line)
				return
			}
			if !sawRoot {
				sawRoot = true
				c.checkRoot(t, line)
			} else if depth == 1 {
				c.errorf("second root element <%s> at line %d", t.Name.Local, line)
			}
			if depth == 2 && t.Name.Local == "title" {
				sawTitle, inTitle = true, true
			}
			inStyle = t.Name.Local == "style"
			c.checkElement(t, line)
		case xml.EndElement:
			depth--
			inTitle, inStyle = false, false
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				c.errorf("text outside the root element at line %d", line)
			}
			if inTitle {
				titleText.Write(t)
			}
			if inStyle {
				c.checkCSS(string(t), "<style>", line)
			}
		case xml.Directive:
			if bytes.Contains(t, []byte("ENTITY")) {
				c.errorf("the DOCTYPE at line %d declares entities; indicators must not use them", line)
			}
		}
	}
	if !sawRoot {
		c.errorf("no root element: not an SVG")
		return
	}
	// SVG Tiny PS: the root MUST have a <title> child naming the brand.
	if !sawTitle {
		c.errorf("no <title> element as a child of <svg>: SVG Tiny PS requires one")
	} else if strings.TrimSpace(titleText.String()) == "" {
		c.warnf("the <title> element is empty; it should name the brand")
	}
}

// checkRoot checks the attributes of the root element.
func (c *checker) checkRoot(t xml.StartElement, line int) {
	if t.Name.Local != "svg" {
		c.errorf("root element is <%s> at line %d, want <svg>", t.Name.Local, line)
		return
	}
	if t.Name.Space != svgNS {
		c.errorf("root <svg> is not in the SVG namespace (xmlns=%q), found %q", svgNS, t.Name.Space)
	}
	attr := func(name string) (string, bool) {
		for _, a := range t.Attr {
			if a.Name.Local == name && (a.Name.Space == "" || a.Name.Space == svgNS) {
				return a.Value, true
			}
		}
		return "", false
	}
	switch v, ok := attr("version"); {
	case !ok:
		c.errorf(`root <svg> has no version attribute, want version="1.2"`)
	case strings.TrimSpace(v) != "1.2":
		c.errorf(`root <svg> has version=%q, want "1.2"`, v)
	}
	switch v, ok := attr("baseProfile"); {
	case !ok:
		c.errorf(`root <svg> has no baseProfile attribute, want baseProfile="tiny-ps"`)
	case strings.TrimSpace(v) != "tiny-ps":
		c.errorf(`root <svg> has baseProfile=%q, want "tiny-ps"`, v)
	}
	for _, name := range []string{"x", "y"} {
		if v, ok := attr(name); ok {
			c.errorf("root <svg> has %s=%q; SVG Tiny PS forbids x and y on the root", name, v)
		}
	}
	vb, ok := attr("viewBox")
	if !ok {
		c.warnf("root <svg> has no viewBox: the aspect ratio cannot be checked; indicators should be square")
		return
	}
	f := strings.FieldsFunc(vb, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' || r == '\r' })
	if len(f) != 4 {
		c.errorf("root <svg> viewBox=%q does not have four numbers", vb)
		return
	}
	w, err1 := strconv.ParseFloat(f[2], 64)
	h, err2 := strconv.ParseFloat(f[3], 64)
	switch {
	case err1 != nil || err2 != nil:
		c.errorf("root <svg> viewBox=%q is not numeric", vb)
	case w <= 0 || h <= 0:
		c.errorf("root <svg> viewBox=%q has a width or height that is not positive", vb)
	case w != h:
		c.warnf("root <svg> viewBox=%q is %gx%g, not square; indicators are shown in a square or circle", vb, w, h)
	}
}

// forbidden lists the elements SVG Tiny PS does not allow, with why.
func forbidden(local string) string {
	switch local {
	case "script", "handler":
		return "scripts are not allowed"
	case "image":
		return "embedded (raster) images are not allowed"
	case "foreignObject", "video", "audio", "iframe", "animation", "embed", "object":
		return "external or foreign content is not allowed"
	case "animate", "animateMotion", "animateColor", "animateTransform", "set", "discard":
		return "animation is not allowed"
	}
	return ""
}

// checkElement checks one element and its attributes.
func (c *checker) checkElement(t xml.StartElement, line int) {
	el := t.Name.Local
	if why := forbidden(el); why != "" {
		c.errorf("<%s> element at line %d: %s in SVG Tiny PS", el, line, why)
	}
	for _, a := range t.Attr {
		name := a.Name.Local
		if a.Name.Space == "http://www.w3.org/1999/xlink" || a.Name.Space == "xlink" {
			name = "xlink:" + name
		}
		v := a.Value
		if hasJavaScript(v) {
			c.errorf("<%s %s=...> at line %d holds a javascript: URI", el, name, line)
			continue
		}
		if len(a.Name.Local) > 2 && strings.EqualFold(a.Name.Local[:2], "on") && a.Name.Space != "xmlns" {
			c.errorf("<%s %s=...> at line %d: event handler attributes are not allowed", el, name, line)
			continue
		}
		if a.Name.Local == "href" && a.Name.Space != "xmlns" {
			if ref := strings.TrimSpace(v); !strings.HasPrefix(ref, "#") {
				c.errorf("<%s %s=%q> at line %d: external reference; only local #id references are allowed", el, name, clip(ref), line)
			}
			continue
		}
		if a.Name.Local == "style" {
			c.checkCSS(v, fmt.Sprintf("<%s style>", el), line)
			continue
		}
		if strings.Contains(v, "url(") {
			c.checkCSS(v, fmt.Sprintf("<%s %s>", el, name), line)
		}
	}
}

// checkCSS checks url() references and @import in style text.
func (c *checker) checkCSS(css, where string, line int) {
	if hasJavaScript(css) {
		c.errorf("%s at line %d holds a javascript: URI", where, line)
	}
	if strings.Contains(strings.ToLower(css), "@import") {
		c.errorf("%s at line %d uses @import: external reference", where, line)
	}
	rest := css
	for {
		i := strings.Index(strings.ToLower(rest), "url(")
		if i < 0 {
			return
		}
		rest = rest[i+4:]
		end := strings.IndexByte(rest, ')')
		ref := rest
		if end >= 0 {
			ref = rest[:end]
		}
		ref = strings.Trim(strings.TrimSpace(ref), `'"`)
		if !strings.HasPrefix(ref, "#") {
			c.errorf("%s at line %d references url(%s): only local #id references are allowed", where, line, clip(ref))
		}
	}
}

// hasJavaScript reports whether s holds a javascript: URI, ignoring case
// and the white space and control characters browsers skip.
func hasJavaScript(s string) bool {
	if !strings.ContainsAny(s, ":") {
		return false
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r > ' ' {
			b.WriteRune(r)
		}
	}
	return strings.Contains(b.String(), "javascript:")
}
