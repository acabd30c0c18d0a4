package smtpprobe

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
)

// Bounds of what the probe reads from a server.
const (
	// maxLine bounds one reply line. RFC 5321 §4.5.3.1.5 allows 512
	// octets; real servers exceed it a little, so twice that is read.
	maxLine = 1024
	// maxReplyLines and maxReplyBytes bound a multi-line reply (a banner or
	// an EHLO response).
	maxReplyLines = 64
	maxReplyBytes = 16 << 10
)

// reply is an SMTP reply (RFC 5321 §4.2).
type reply struct {
	code  int
	lines []string // the text after the code and separator, per line
}

func (r *reply) text() string { return strings.Join(r.lines, " ") }

// readReply reads one reply: lines "ddd-text" ending with "ddd text" or
// "ddd" (RFC 5321 §4.2.1), all with the same code. Bare LF endings are
// accepted. Errors wrap ErrProtocol, or are the reader's (timeouts, EOF).
func readReply(br *bufio.Reader) (*reply, error) {
	r := &reply{}
	total := 0
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		if total += len(line); total > maxReplyBytes || len(r.lines) >= maxReplyLines {
			return nil, fmt.Errorf("%w: reply longer than %d lines or %d bytes", ErrProtocol, maxReplyLines, maxReplyBytes)
		}
		if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) || line[0] < '2' || line[0] > '5' {
			return nil, fmt.Errorf("%w: malformed reply line %q", ErrProtocol, clip(line))
		}
		code := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		// RFC 5321 §4.2.1: every line of a multi-line reply has the
		// same code.
		if r.code != 0 && code != r.code {
			return nil, fmt.Errorf("%w: reply code changes from %d to %d within one reply", ErrProtocol, r.code, code)
		}
		r.code = code
		switch {
		case len(line) == 3:
			r.lines = append(r.lines, "")
			return r, nil
		case line[3] == ' ':
			r.lines = append(r.lines, line[4:])
			return r, nil
		case line[3] == '-':
			r.lines = append(r.lines, line[4:])
		default:
			return nil, fmt.Errorf("%w: malformed reply line %q (want a space or \"-\" after the code)", ErrProtocol, clip(line))
		}
	}
}

// readLine reads a line of at most maxLine bytes and strips its CRLF or LF.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxLine+2 {
			return "", fmt.Errorf("%w: reply line longer than %d bytes", ErrProtocol, maxLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err
		}
		s := strings.TrimSuffix(string(b), "\n")
		return strings.TrimSuffix(s, "\r"), nil
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// clip shortens s for an error message.
func clip(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
