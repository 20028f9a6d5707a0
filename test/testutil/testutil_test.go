package testutil

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestTokenKubeconfigLoads(t *testing.T) {
	kc := TokenKubeconfig("https://127.0.0.1:6443", []byte("-----BEGIN CERTIFICATE-----\n"), "the-token")
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.BearerToken != "the-token" || string(cfg.CAData) != "-----BEGIN CERTIFICATE-----\n" {
		t.Fatalf("config = host %q, token %q, CA %q", cfg.Host, cfg.BearerToken, cfg.CAData)
	}
}

func TestSyncBufferTakesConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 800) {
		t.Fatalf("%d bytes, want 800", len(got))
	}
}

func TestFreePortCanBeListenedOn(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port %d: %v", port, err)
	}
	_ = l.Close()
}
