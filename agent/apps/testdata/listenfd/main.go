// Command listenfd is the test app of the declared services: a small
// server that takes its listening sockets as systemd hands them over
// (LISTEN_FDS, LISTEN_PID, fds from 3), or listens itself with -listen
// (the benchmark's floor). Each connection gets one line and is closed.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "", "listen on this TCP address instead of LISTEN_FDS")
	idle := flag.Duration("idle", 0, "exit 0 after this long without a connection (0: never)")
	delay := flag.Duration("delay", 0, "wait this long before the first accept (a slow start)")
	once := flag.Bool("once", false, "exit 0 after one connection")
	anyPid := flag.Bool("anypid", false, "take LISTEN_FDS whatever LISTEN_PID says (the benchmark's run without the shim)")
	flag.Parse()
	var lns []net.Listener
	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		lns = append(lns, ln)
	} else {
		if !*anyPid && os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
			fmt.Fprintf(os.Stderr, "LISTEN_PID %q is not my pid %d\n", os.Getenv("LISTEN_PID"), os.Getpid())
			os.Exit(3)
		}
		n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		for i := range n {
			ln, err := net.FileListener(os.NewFile(uintptr(3+i), "listen"))
			if err != nil {
				fmt.Fprintln(os.Stderr, "fd", 3+i, err)
				os.Exit(4)
			}
			lns = append(lns, ln)
		}
	}
	if len(lns) == 0 {
		fmt.Fprintln(os.Stderr, "no sockets")
		os.Exit(5)
	}
	fmt.Printf("listenfd %d: %d sockets (%s) args %q\n", os.Getpid(), len(lns), os.Getenv("LISTEN_FDNAMES"), flag.Args())
	time.Sleep(*delay)
	conns := make(chan net.Conn)
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					os.Exit(6)
				}
				conns <- c
			}
		}()
	}
	var mu sync.Mutex
	var t <-chan time.Time
	for {
		if *idle > 0 {
			t = time.After(*idle)
		}
		select {
		case c := <-conns:
			mu.Lock()
			fmt.Fprintf(c, "hello from %d %s\n", os.Getpid(), os.Getenv("OSM_RUNID"))
			c.Close()
			mu.Unlock()
			if *once {
				os.Exit(0)
			}
		case <-t:
			fmt.Println("idle; exiting")
			os.Exit(0)
		}
	}
}
