//go:build !linux

package dnsserver

import (
	"context"
	"net"
)

// readUDPBatch is only implemented on Linux (recvmmsg, sendmmsg).
func (s *Server) readUDPBatch(context.Context, *net.UDPConn) bool { return false }

// listenUDP opens one UDP socket on addr; n readers share it.
func listenUDP(ctx context.Context, addr string, _ int) ([]net.PacketConn, error) {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	return []net.PacketConn{pc}, nil
}
