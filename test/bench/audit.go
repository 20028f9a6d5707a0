package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// auditLog reads the API server's audit log (JSON lines, one per request
// at ResponseComplete) incrementally.
type auditLog struct {
	path   string
	mu     sync.Mutex
	offset int64
	events []auditEvent
}

type auditEvent struct {
	at          time.Time // requestReceivedTimestamp
	user        string
	verb        string
	resource    string // resource or resource/subresource
	name        string
	code        int
	nonResource bool
}

type rawAuditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	RequestURI string `json:"requestURI"`
	ObjectRef  *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

// read parses the lines appended since the last call.
func (a *auditLog) read() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.Open(a.path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			// An incomplete last line is read again next time.
			return nil
		}
		if err != nil {
			return err
		}
		a.offset += int64(len(line))
		var raw rawAuditEvent
		if err := json.Unmarshal(line, &raw); err != nil {
			return fmt.Errorf("audit log line: %w", err)
		}
		ev := auditEvent{at: raw.RequestReceivedTimestamp, user: raw.User.Username, verb: raw.Verb}
		if raw.ObjectRef != nil {
			ev.resource = raw.ObjectRef.Resource
			if raw.ObjectRef.Subresource != "" {
				ev.resource += "/" + raw.ObjectRef.Subresource
			}
			ev.name = raw.ObjectRef.Name
		} else {
			ev.nonResource = true
			ev.resource = raw.RequestURI
		}
		if raw.ResponseStatus != nil {
			ev.code = raw.ResponseStatus.Code
		}
		a.events = append(a.events, ev)
	}
}

// apiCounts are a user's requests in a time window.
type apiCounts struct {
	total  int
	reads  int            // get, list, watch
	writes int            // create, update, patch, delete, deletecollection
	byKind map[string]int // "verb resource" -> count
}

func isWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// count returns user's requests received in [from, to).
func (a *auditLog) count(user string, from, to time.Time) (apiCounts, error) {
	if err := a.read(); err != nil {
		return apiCounts{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := apiCounts{byKind: map[string]int{}}
	for _, ev := range a.events {
		if ev.user != user || ev.at.Before(from) || !ev.at.Before(to) || ev.nonResource {
			continue
		}
		c.total++
		if isWrite(ev.verb) {
			c.writes++
		} else {
			c.reads++
		}
		c.byKind[ev.verb+" "+ev.resource]++
	}
	return c, nil
}

// writesTo counts writes whose resource is one of resources.
func (c apiCounts) writesTo(resources ...string) int {
	n := 0
	for k, v := range c.byKind {
		verb, res, _ := strings.Cut(k, " ")
		if !isWrite(verb) {
			continue
		}
		for _, r := range resources {
			if res == r {
				n += v
			}
		}
	}
	return n
}

// breakdown formats the counts by verb and resource, per unit.
func (c apiCounts) breakdown(per float64) string {
	keys := make([]string, 0, len(c.byKind))
	for k := range c.byKind {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(c.byKind[k])/per))
	}
	return strings.Join(parts, ", ")
}
