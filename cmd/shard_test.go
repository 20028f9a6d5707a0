package main

import "testing"

func TestShardFlags(t *testing.T) {
	for _, c := range []struct {
		index    string
		count    int
		host     string
		want     int
		wantErr  bool
		wantName string
	}{
		{index: "0", count: 1, want: 0, wantName: "tokensync-leader.oauth.tokensync.io"},
		{index: "2", count: 4, want: 2, wantName: "tokensync-leader-shard-2.oauth.tokensync.io"},
		{index: "ordinal", count: 2, host: "tokensync-3", want: 1, wantName: "tokensync-leader-shard-1.oauth.tokensync.io"},
		{index: "ordinal", count: 3, host: "tokensync-controller-manager-0", want: 0, wantName: "tokensync-leader-shard-0.oauth.tokensync.io"},
		{index: "ordinal", count: 2, host: "tokensync", wantErr: true},
		{index: "4", count: 4, wantErr: true},
		{index: "-1", count: 2, wantErr: true},
		{index: "x", count: 2, wantErr: true},
		{index: "0", count: 0, wantErr: true},
	} {
		s, err := shardOptions{index: c.index, count: c.count}.resolve(c.host)
		if (err != nil) != c.wantErr {
			t.Errorf("--shard-index=%s --shard-count=%d on %q: error %v, want error %v", c.index, c.count, c.host, err, c.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if s.Index != c.want || s.Count != c.count {
			t.Errorf("--shard-index=%s --shard-count=%d on %q: shard %s, want %d/%d", c.index, c.count, c.host, s, c.want, c.count)
		}
		if got := leaderElectionID(s); got != c.wantName {
			t.Errorf("shard %s: Lease %q, want %q", s, got, c.wantName)
		}
	}
}
