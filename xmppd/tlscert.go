package xmppd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Certificate holds the server certificate and reloads it on demand (SIGHUP)
// without dropping connections: new handshakes use the new certificate.
type Certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	SelfSigned        bool
}

// LoadCertificate loads certFile/keyFile (PEM; the certificate file may hold
// the chain). With both empty it uses a self-signed certificate for domain
// and *.domain kept in dataDir, creating it (0600) on first start.
func LoadCertificate(certFile, keyFile, dataDir, domain string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile}
	if certFile == "" && keyFile == "" {
		c.SelfSigned = true
		c.certFile = filepath.Join(dataDir, "selfsigned-cert.pem")
		c.keyFile = filepath.Join(dataDir, "selfsigned-key.pem")
		if _, err := os.Stat(c.certFile); errors.Is(err, os.ErrNotExist) {
			if err := writeSelfSigned(c.certFile, c.keyFile, domain); err != nil {
				return nil, err
			}
		}
	} else if certFile == "" || keyFile == "" {
		return nil, errors.New("xmppd: tls: cert_file and key_file must be set together")
	}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again; on error the old certificate stays in use.
func (c *Certificate) Reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("xmppd: tls: load %s: %w", c.certFile, err)
	}
	c.cur.Store(&cert)
	return nil
}

// TLSConfig returns a server config (TLS 1.2+) that always presents the
// current certificate.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

func writeSelfSigned(certFile, keyFile, domain string) error {
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return fmt.Errorf("xmppd: tls: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("xmppd: tls: generate key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domain, Organization: []string{"ownChat self-signed"}},
		DNSNames:              []string{domain, "*." + domain},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("xmppd: tls: self-signed certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("xmppd: tls: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return fmt.Errorf("xmppd: tls: write key: %w", err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("xmppd: tls: write certificate: %w", err)
	}
	return nil
}
