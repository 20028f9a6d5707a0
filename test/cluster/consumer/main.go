// Command consumer is the workload of the cluster test (test/cluster): a
// static binary, run from its own image, that reads an access token the way
// applications do, from a mounted Secret file (-file) or an environment
// variable (-env), and calls a protected resource with it every -interval.
//
// It prints one line per call and one when the mounted file changes, never
// the token itself, only the first 16 hex digits of its SHA-256:
//
//	time=2026-11-22T18:40:00.123456789Z event=call digest=0123456789abcdef status=200
//	time=2026-11-22T18:40:01.5Z event=file-changed digest=fedcba9876543210
//	time=... event=error digest= error="open /token/access_token: permission denied"
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	file := flag.String("file", "", "file holding the token (a mounted Secret key)")
	env := flag.String("env", "", "environment variable holding the token")
	url := flag.String("url", "", "protected resource, called with Authorization: Bearer <token>")
	interval := flag.Duration("interval", time.Second, "time between calls")
	watch := flag.Duration("watch", 100*time.Millisecond, "how often the file is checked for a change")
	flag.Parse()
	if (*file == "") == (*env == "") || *url == "" {
		fmt.Fprintln(os.Stderr, "consumer: want -url and one of -file, -env")
		os.Exit(2)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	var last string
	next := time.Now()
	for {
		token, err := read(*file, *env)
		if err != nil {
			logf("event=error digest= error=%q", err.Error())
		} else if d := digest(token); *file != "" && d != last {
			if last != "" {
				logf("event=file-changed digest=%s", d)
			}
			last = d
		}
		if err == nil && !time.Now().Before(next) {
			next = time.Now().Add(*interval)
			logf("event=call digest=%s status=%s", digest(token), call(client, *url, token))
		}
		if *file == "" {
			time.Sleep(*interval)
		} else {
			time.Sleep(*watch)
		}
	}
}

func read(file, env string) (string, error) {
	if env != "" {
		t := os.Getenv(env)
		if t == "" {
			return "", fmt.Errorf("$%s is empty", env)
		}
		return t, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func call(c *http.Client, url, token string) string {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "error"
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return "unreachable"
	}
	_ = resp.Body.Close()
	return fmt.Sprint(resp.StatusCode)
}

// digest is what the test compares: the token never leaves the process.
func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

func logf(format string, args ...any) {
	fmt.Printf("time=%s "+format+"\n", append([]any{time.Now().UTC().Format(time.RFC3339Nano)}, args...)...)
}
