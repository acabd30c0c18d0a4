package policyserver

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/moatmail/moat/internal/reqid"
)

// statusCounts counts answers by status class (1xx to 5xx): atomic adds,
// no allocation, so that the policy path stays allocation-free.
type statusCounts [6]atomic.Uint64

func (c *statusCounts) add(status int) {
	if i := status / 100; i >= 1 && i <= 5 {
		c[i].Add(1)
	}
}

// statusWriter records the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logged wraps h to log each request at debug level, under the request
// id (package reqid) that X-Request-Id carries back; the service hosts'
// handlers (intake, dashboard) log under the same id. Only wrapped when
// debug lines are written: the policy path pays nothing otherwise.
func logged(log *slog.Logger, listener string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := reqid.New()
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		log.Debug(listener+" request", "req", id, "remote", r.RemoteAddr, "method", r.Method, "host", r.Host, "path", r.URL.Path,
			"status", sw.status, "duration", time.Since(start))
	})
}

// counted wraps a service host's handler to count its answers.
func counted(h http.Handler, c *statusCounts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		c.add(sw.status)
	})
}

// Stats are the server's counts since it was made.
type Stats struct {
	// Requests answered, by host ("policy" for every policy host, else the
	// service host's name) and status class ("2xx", ...).
	Requests map[string]map[string]uint64
	// HandshakesRefused counts TLS handshakes for names not served.
	HandshakesRefused uint64
	// ACME orders: started, obtained (certificates issued or renewed) and
	// failed.
	OrdersStarted, OrdersObtained, OrdersFailed uint64
}

// Stats returns the counts.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:          map[string]map[string]uint64{},
		HandshakesRefused: s.refused.Load(),
		OrdersStarted:     s.ordersStarted.Load(),
		OrdersObtained:    s.ordersObtained.Load(),
		OrdersFailed:      s.ordersFailed.Load(),
	}
	add := func(host string, c *statusCounts) {
		m := map[string]uint64{}
		for i := 1; i <= 5; i++ {
			if v := c[i].Load(); v > 0 {
				m[string(rune('0'+i))+"xx"] = v
			}
		}
		st.Requests[host] = m
	}
	add("policy", s.policyCounts)
	for host, c := range s.serviceCounts {
		add(host, c)
	}
	return st
}
