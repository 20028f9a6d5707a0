// Package argocd tests the Argo CD health check shipped in
// config/argocd, with gopher-lua (the Lua runtime Argo CD uses), against
// OAuthClientToken statuses as tokensync writes them.
package argocd

import (
	"os"
	"path/filepath"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

const healthKey = "resource.customizations.health.oauth.tokensync.io_OAuthClientToken"

func script(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "argocd", "argocd-cm-health.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	s := cm.Data[healthKey]
	if s == "" {
		t.Fatalf("no %s in the ConfigMap", healthKey)
	}
	return s
}

// toLua converts decoded JSON into Lua values, as Argo CD does.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case []any:
		t := L.NewTable()
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	case map[string]any:
		t := L.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	}
	return lua.LNil
}

func health(t *testing.T, src, manifest string) (status, message string) {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		t.Fatal(err)
	}
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(src); err != nil {
		t.Fatalf("the health script failed: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatal("the health script returned no table")
	}
	return ret.RawGetString("status").String(), ret.RawGetString("message").String()
}

func TestHealth(t *testing.T) {
	src := script(t)
	const head = "apiVersion: oauth.tokensync.io/v1alpha1\nkind: OAuthClientToken\nmetadata: {name: t, generation: 2}\n"
	for _, tc := range []struct {
		name, status, want string
	}{
		{"just created", "status: {observedGeneration: -1}", "Progressing"},
		{"no status", "", "Progressing"},
		{"first token pending", `status:
  observedGeneration: 2
  conditions:
  - {type: Reconciling, status: "True", reason: TokenEndpointUnavailable, message: retrying}
  - {type: Ready, status: "False", reason: TokenEndpointUnavailable, message: "token endpoint returned 503"}`, "Progressing"},
		{"ready", `status:
  observedGeneration: 2
  conditions:
  - {type: Ready, status: "True", reason: TokenReady, message: "Secret t holds a token"}`, "Healthy"},
		{"refreshing with a valid token", `status:
  observedGeneration: 2
  conditions:
  - {type: Ready, status: "True", reason: TokenReady, message: "renewal failing, retrying"}
  - {type: Reconciling, status: "True", reason: TokenEndpointUnavailable, message: retrying}`, "Healthy"},
		{"stalled", `status:
  observedGeneration: 2
  conditions:
  - {type: Ready, status: "False", reason: InvalidClient, message: "invalid_client"}
  - {type: Stalled, status: "True", reason: InvalidClient, message: "invalid_client"}`, "Degraded"},
		{"expired", `status:
  observedGeneration: 2
  conditions:
  - {type: Ready, status: "False", reason: TokenExpired, message: "expired"}
  - {type: Reconciling, status: "True", reason: TokenEndpointUnavailable, message: retrying}`, "Degraded"},
		{"spec changed, not yet seen", `status:
  observedGeneration: 1
  conditions:
  - {type: Ready, status: "True", reason: TokenReady, message: ok}`, "Progressing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := health(t, src, head+tc.status)
			if got != tc.want {
				t.Fatalf("health %s (%q), want %s", got, msg, tc.want)
			}
		})
	}
}
