package main

import "testing"

func TestTokenWorkersStarted(t *testing.T) {
	const (
		rollout = `{"level":"info","ts":"2026-12-04T18:56:42.668099838Z","msg":"Starting workers","controller":"rolloutrestart","controllerGroup":"oauth.tokensync.io","controllerKind":"OAuthClientToken","worker count":1}` + "\n"
		source  = `{"level":"info","ts":"2026-12-04T18:56:42.567759088Z","msg":"Starting EventSource","controller":"oauthclienttoken","controllerGroup":"oauth.tokensync.io","controllerKind":"OAuthClientToken","source":"kind source: *v1alpha1.OAuthClientToken"}` + "\n"
		token   = `{"level":"info","ts":"2026-12-04T18:56:43.768882592Z","msg":"Starting workers","controller":"oauthclienttoken","controllerGroup":"oauth.tokensync.io","controllerKind":"OAuthClientToken","worker count":4}` + "\n"
		console = "2026-12-04T18:56:43.768Z\tINFO\tStarting workers\t{\"controller\": \"oauthclienttoken\", \"controllerGroup\": \"oauth.tokensync.io\", \"worker count\": 4}\n"
	)
	for _, tc := range []struct {
		log  string
		want bool
	}{
		{"", false},
		// The rollout controller watches OAuthClientTokens too, and starts
		// its one worker before the token controller's index has synced.
		{source + rollout, false},
		{source + rollout + token, true},
		{console, true},
	} {
		if got := tokenWorkersStarted(tc.log); got != tc.want {
			t.Errorf("tokenWorkersStarted(%q) = %v, want %v", tc.log, got, tc.want)
		}
	}
}
