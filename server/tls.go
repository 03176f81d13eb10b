package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	// nbio's non-blocking TLS is a fork of crypto/tls that can be fed bytes by the poller;
	// its Config is what nbhttp takes. Certificates are built with the standard library.
	"github.com/lesismal/llib/std/crypto/tls"
)

// tlsConfig returns nil for plain ws, or the server TLS config and the served certificate in
// PEM (the first block of the chain).
func (cfg Config) tlsConfig() (*tls.Config, []byte, error) {
	var certPEM, keyPEM []byte
	switch {
	case cfg.TLSSelfSigned:
		var err error
		if certPEM, keyPEM, err = SelfSigned(); err != nil {
			return nil, nil, err
		}
	case cfg.TLSCert != "":
		var err error
		if certPEM, err = os.ReadFile(cfg.TLSCert); err != nil {
			return nil, nil, fmt.Errorf("server: TLS certificate: %w", err)
		}
		if keyPEM, err = os.ReadFile(cfg.TLSKey); err != nil {
			return nil, nil, fmt.Errorf("server: TLS key: %w", err)
		}
	default:
		return nil, nil, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if cfg.TLSSelfSigned {
			return nil, nil, fmt.Errorf("server: self-signed key pair: %w", err)
		}
		return nil, nil, fmt.Errorf("server: TLS key pair (%s, %s): %w", cfg.TLSCert, cfg.TLSKey, err)
	}
	// Parse the leaf once here rather than on every handshake.
	if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
		return nil, nil, fmt.Errorf("server: TLS certificate: %w", err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		// Advertise HTTP/1.1 so ALPN-speaking clients (browsers) do not try h2, which has
		// no WebSocket upgrade here.
		NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12,
	}, leafPEM, nil
}

// SelfSigned generates a fresh ECDSA P-256 certificate and key, in PEM, valid for a year for
// 127.0.0.1, ::1 and localhost. Nothing is written to disk.
func SelfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("server: self-signed key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("server: self-signed serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"wsload serve"}, CommonName: "localhost"},
		NotBefore:             now.Add(-time.Hour), // tolerate a little clock skew
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // lets a client trust it directly as its own root
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("server: self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("server: self-signed key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}
