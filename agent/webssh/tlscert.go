package webssh

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"time"

	"osmanager/agent/sysroot"
)

// certLifetime is the self-signed certificate's validity; a new one is
// made when it has less than a month left.
const certLifetime = 10 * 365 * 24 * time.Hour

// tlsConfig returns the TLS setup, or nil for plain HTTP.
func (s *Server) tlsConfig() (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case s.cfg.CertFile != "":
		cert, err = tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: load certificate: %w", ErrConfig, err)
		}
	case s.cfg.SelfSigned:
		cert, err = s.selfSigned()
		if err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// selfSigned loads the kept certificate, or makes one (ECDSA P-256) and
// keeps it, key and certificate 0600, written atomically under the LuoYun
// root.
func (s *Server) selfSigned() (tls.Certificate, error) {
	f, now := s.cfg.Files, s.cfg.Clock.Now()
	certPEM, err1 := s.cfg.Conf.ReadFile(f.Cert, 1<<20)
	keyPEM, err2 := s.cfg.Conf.ReadFile(f.Key, 1<<20)
	if err1 == nil && err2 == nil {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err == nil && cert.Leaf != nil && now.Before(cert.Leaf.NotAfter.Add(-30*24*time.Hour)) {
			return cert, nil
		}
		s.log.Warn("making a new self-signed certificate", "reason", "kept one is unusable or expiring", "cert", f.Cert)
	} else if !errors.Is(err1, fs.ErrNotExist) && err1 != nil || !errors.Is(err2, fs.ErrNotExist) && err2 != nil {
		return tls.Certificate{}, fmt.Errorf("read certificate: %w", errors.Join(err1, err2))
	}
	if h := s.cfg.Hostname; h != "" {
		if _, ok := dnsName(h); !ok {
			if _, err := netip.ParseAddr(h); err != nil {
				s.log.Warn("host name left out of the self-signed certificate: not a DNS name", "hostname", logUser(h))
			}
		}
	}
	certPEM, keyPEM, err := makeCert(s.cfg.Hostname, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	opts := sysroot.WriteOptions{Mode: 0o600, Owner: sysroot.Keep, MkdirMode: 0o700}
	if _, err := s.cfg.Conf.WriteFile(f.Key, keyPEM, opts); err != nil {
		return tls.Certificate{}, err
	}
	if _, err := s.cfg.Conf.WriteFile(f.Cert, certPEM, opts); err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	sum := sha256.Sum256(cert.Certificate[0])
	s.log.Info("made a self-signed certificate for the web terminal", "cert", f.Cert, "sha256", fmt.Sprintf("%X", sum[:]))
	return cert, nil
}

// makeCert makes a self-signed certificate for host, localhost and the
// machine's addresses.
func makeCert(host string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "osmanager web terminal", Organization: []string{"LuoYun"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	// Only a valid DNS name (or an IP) goes in: x509 refuses anything else
	// (a non-ASCII domain.name), and the terminal would never start.
	if ip, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.Unmap().WithZone("").AsSlice()))
	} else if name, ok := dnsName(host); ok && name != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, name)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, n.IP)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("make certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}
