//go:build linux

package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// batchLen is how many datagrams one recvmmsg/sendmmsg moves.
	batchLen = 32
	// maxUDPQuery bounds a query datagram in the batched path; a longer
	// one arrives cut (MSG_TRUNC) and is dropped. Real queries are a few
	// hundred bytes at most.
	maxUDPQuery = 4096
)

// batch holds the buffers of one batched UDP reader, reused for every
// batch so that the loop does not allocate.
type batch struct {
	rhdr  [batchLen]unix.Mmsghdr
	riov  [batchLen]unix.Iovec
	addr  [batchLen]unix.RawSockaddrInet6 // large enough for IPv4 and IPv6
	rbuf  [batchLen][]byte
	whdr  [batchLen]unix.Mmsghdr
	wiov  [batchLen]unix.Iovec
	wbuf  [batchLen][]byte
	nrecv int
	nsend int
	sent  int
	errno syscall.Errno
}

func newBatch() *batch {
	b := &batch{}
	for i := range b.rhdr {
		b.rbuf[i] = make([]byte, maxUDPQuery)
		b.wbuf[i] = make([]byte, 0, maxMsg)
		b.riov[i] = unix.Iovec{Base: &b.rbuf[i][0]}
		b.riov[i].SetLen(maxUDPQuery)
		b.rhdr[i].Hdr.Iov = &b.riov[i]
		b.rhdr[i].Hdr.SetIovlen(1)
		b.rhdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.addr[i]))
		b.whdr[i].Hdr.Iov = &b.wiov[i]
		b.whdr[i].Hdr.SetIovlen(1)
	}
	return b
}

// recv is the RawConn.Read callback: one recvmmsg, false to wait for the
// socket to become readable.
func (b *batch) recv(fd uintptr) bool {
	for i := range b.rhdr {
		b.rhdr[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.rhdr[i].Hdr.Flags = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rhdr[0])), batchLen, unix.MSG_DONTWAIT, 0, 0)
	if errno == unix.EAGAIN {
		return false
	}
	if errno == unix.EINTR {
		return false
	}
	b.errno = errno
	b.nrecv = 0
	if errno == 0 {
		b.nrecv = int(n)
	}
	return true
}

// send is the RawConn.Write callback: sendmmsg until every response is
// out; false to wait for the socket to become writable.
func (b *batch) send(fd uintptr) bool {
	for b.sent < b.nsend {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.whdr[b.sent])), uintptr(b.nsend-b.sent), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EAGAIN:
			return false
		case errno == unix.EINTR:
		case errno != 0:
			// The first message failed (the client's address is
			// unreachable, a firewall): skip it.
			b.sent++
		default:
			b.sent += int(n)
		}
	}
	return true
}

// readUDPBatch serves uc with recvmmsg and sendmmsg until uc is closed or
// ctx is done. It reports false at once when the socket does not support
// them (then the caller falls back to one datagram per call).
func (s *Server) readUDPBatch(ctx context.Context, uc *net.UDPConn) bool {
	rc, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	b := newBatch()
	var backoff time.Duration
	for {
		if err := rc.Read(b.recv); err != nil {
			if s.readFailed(ctx, err, &backoff) {
				return true
			}
			continue
		}
		if b.errno != 0 {
			if b.errno == unix.ENOSYS {
				return false
			}
			if s.readFailed(ctx, b.errno, &backoff) {
				return true
			}
			continue
		}
		backoff = 0
		b.nsend, b.sent = 0, 0
		for i := range b.nrecv {
			h := &b.rhdr[i]
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				continue
			}
			// Not logged: New turns batches off when queries are logged.
			resp := s.appendResponse(b.wbuf[b.nsend][:0], b.rbuf[i][:h.Len], UDP, netip.AddrPort{})
			if resp == nil {
				continue
			}
			w := &b.whdr[b.nsend]
			w.Hdr.Name = h.Hdr.Name
			w.Hdr.Namelen = h.Hdr.Namelen
			b.wiov[b.nsend].Base = &resp[0]
			b.wiov[b.nsend].SetLen(len(resp))
			b.nsend++
		}
		if b.nsend > 0 {
			if err := rc.Write(b.send); err != nil {
				if s.readFailed(ctx, err, &backoff) {
					return true
				}
			}
		}
	}
}

// listenUDP opens n UDP sockets on addr with SO_REUSEPORT, so that the
// kernel spreads the queries over them by client address and port. With
// port 0 they all take the port the first one got.
func listenUDP(ctx context.Context, addr string, n int) ([]net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var pcs []net.PacketConn
	for i := range max(n, 1) {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			for _, pc := range pcs {
				_ = pc.Close()
			}
			return nil, err
		}
		if i == 0 {
			addr = pc.LocalAddr().String()
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
}
