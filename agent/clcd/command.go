package clcd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"osmanager/agent/conf"
)

// Command is `osmanager controller [flags]`: a local controller that
// knows the instances given by flags, logs one JSON line per event on
// stdout, and runs until ctx ends.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("osmanager controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: osmanager controller [flags]

A LuoYun cloud controller for local use: instances authenticate with their
TAG and KEY, register and report; every event is a JSON line on stdout.

`)
		fs.PrintDefaults()
	}
	s := &Server{Instances: map[int32]string{}, Log: stdout}
	listen := fs.String("listen", ":1369", "TCP address to listen on")
	fs.Func("instance", "an instance it knows, as TAG:KEY (repeatable)", func(v string) error {
		tag, key, ok := strings.Cut(v, ":")
		if !ok {
			return errors.New("want TAG:KEY")
		}
		return addInstance(s.Instances, tag, key)
	})
	fs.Func("ini", "read an instance's TAG and KEY from this luoyun.ini or luoyun.conf (repeatable)", func(path string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		c, err := conf.Parse(b)
		if err != nil {
			return err
		}
		if !c.HasTag || c.Key == "" {
			return fmt.Errorf("%s: no TAG or no KEY", path)
		}
		return addInstance(s.Instances, strconv.Itoa(c.Tag), c.Key)
	})
	group := fs.String("join-group", "", "multicast group to send JOIN datagrams to, e.g. 228.0.0.1 (default: send none)")
	port := fs.Int("join-port", 1369, "UDP port for JOIN datagrams (CLC_MCAST_PORT)")
	fs.DurationVar(&s.JoinEvery, "join-every", DefaultJoinEvery, "how often to send JOIN (besides at start-up)")
	advertise := fs.String("advertise", "", "IP[:PORT] the JOIN announces (default: -listen's address, which must then name an IP)")
	queryEvery := fs.Duration("query-every", 0, "send OSM_QUERY_REQUEST to every registered instance this often (default: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("controller: unexpected arguments %q", fs.Args())
	}
	if len(s.Instances) == 0 {
		return errors.New("controller: no instances: give -instance TAG:KEY or -ini luoyun.ini")
	}
	s.Listen = *listen
	if *group != "" {
		ip, err := netip.ParseAddr(*group)
		if err != nil || !ip.Is4() {
			return fmt.Errorf("-join-group %q: not an IPv4 address", *group)
		}
		if *port < 1 || *port > 65535 {
			return fmt.Errorf("-join-port %d: not a port", *port)
		}
		s.JoinTo = netip.AddrPortFrom(ip, uint16(*port))
	}
	if *advertise != "" {
		a, err := parseAdvertise(*advertise, *listen)
		if err != nil {
			return err
		}
		s.Advertise = a
	}
	if _, err := s.ListenAndAddr(); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *queryEvery > 0 {
		wg.Go(func() { queryLoop(ctx, s, *queryEvery) })
	}
	return s.Run(ctx)
}

func addInstance(m map[int32]string, tagText, key string) error {
	tag, err := strconv.ParseInt(tagText, 10, 32)
	if err != nil || tag < 0 {
		return fmt.Errorf("TAG %q: not a non-negative integer", tagText)
	}
	if key == "" || strings.Contains(key, ":") {
		return fmt.Errorf("tag %d: KEY must be non-empty and without ':'", tag)
	}
	m[int32(tag)] = key
	return nil
}

// parseAdvertise takes IP or IP:PORT; the port defaults to -listen's.
func parseAdvertise(v, listen string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(v); err == nil && ap.Addr().Is4() {
		return ap, nil
	}
	ip, err := netip.ParseAddr(v)
	if err != nil || !ip.Is4() {
		return netip.AddrPort{}, fmt.Errorf("-advertise %q: want IPv4[:PORT]", v)
	}
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("-listen %q: %w", listen, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return netip.AddrPort{}, fmt.Errorf("-advertise %q: give the port too, -listen has none", v)
	}
	return netip.AddrPortFrom(ip, uint16(n)), nil
}

// queryLoop queries every registered instance every d; a query not
// answered in 10 s drops the session, as the cloud's job timeout does.
func queryLoop(ctx context.Context, s *Server, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tags := s.Stats().Registered
		slices.Sort(tags)
		for _, tag := range tags {
			qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			s.Query(qctx, tag) // the events tell the story
			cancel()
		}
	}
}
