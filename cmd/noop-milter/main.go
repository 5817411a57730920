// Command noop-milter serves emersion/go-milter's NoOpMilter: it answers
// every milter command with "continue" and the end of each message with
// "accept", doing nothing else. It is the protocol floor testbed/compare.sh
// measures nobounce (with no scanner) against: the cost of go-milter's own
// framing and dispatch, below which no milter built on it can go.
//
//	noop-milter -listen inet:127.0.0.1:10030
//
// It stops on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	gomilter "github.com/emersion/go-milter"

	"github.com/nobounce/nobounce/sockaddr"
)

func main() {
	listen := flag.String("listen", "inet:127.0.0.1:10030", "milter `SOCKET` to listen on: unix:/path or inet:host:port")
	flag.Parse()
	a, err := sockaddr.Parse(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "noop-milter:", err)
		os.Exit(2)
	}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return gomilter.NoOpMilter{} }}
	ln, err := net.Listen(a.Network, a.Address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "noop-milter:", err)
		os.Exit(3)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; srv.Close() }()
	if err := srv.Serve(ln); err != nil && err != gomilter.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "noop-milter:", err)
		os.Exit(1)
	}
}
