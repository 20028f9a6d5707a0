package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokensync/tokensync/internal/failure"
)

// The host label comes from tenants' specs: it names at most maxHosts
// hosts, the first ones used; every other host is "other".
func TestHostLabelIsBounded(t *testing.T) {
	m := New(nil, 3)
	reg := prometheus.NewRegistry()
	if err := reg.Register(m.duration); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		m.ObserveRequest(fmt.Sprintf("https://tenant-%d.example.com/token", i), time.Millisecond, nil)
	}
	m.ObserveRequest("https://tenant-1.example.com/token", time.Millisecond, nil)
	// One host spelled other ways takes no new series.
	m.ObserveRequest("https://TENANT-1.example.com.:0443/token", time.Millisecond, nil)
	m.ObserveRequest("not a url", time.Millisecond, nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]uint64{}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				hosts[l.GetValue()] += s.GetHistogram().GetSampleCount()
			}
		}
	}
	want := map[string]uint64{"tenant-0.example.com": 1, "tenant-1.example.com": 3, "tenant-2.example.com": 1, OtherHost: 48}
	if fmt.Sprint(hosts) != fmt.Sprint(want) {
		t.Fatalf("host series %v, want %v", hosts, want)
	}
}

func TestThrottledRequestsAreNotRequests(t *testing.T) {
	m := New(nil, 0)
	m.ObserveRequest("https://a.example.com/token", time.Millisecond, &failure.Throttled{})
	if len(m.hosts) != 0 {
		t.Fatal("a request held back by the manager's limits was counted")
	}
}
