//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/tokensync/tokensync/test/tokenserver"
)

// These tests run after every other (file order): the last compares the
// requests the manager made during the whole suite, from the API server's
// audit log, with the permissions config/ grants it.

// TestMergePolicyFinalizer takes the path on which the manager patches an
// OAuthClientToken itself: creationPolicy Merge adds a finalizer, so that
// deleting the object first removes tokensync's keys from the shared
// Secret, then the finalizer.
func TestMergePolicyFinalizer(t *testing.T) {
	const ns, id, secret = "mergepolicy", "merge-client", "m3rge:/+ policy"
	srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{id: secret}, ExpiresIn: 3600})
	url, stop := srv.Start()
	t.Cleanup(stop)
	usedSecrets = append(usedSecrets, secret)
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
	mustKubectl(t, "create", "secret", "generic", "creds", "-n", ns, "--from-literal=client_id="+id, "--from-literal=client_secret="+secret)
	mustKubectl(t, "create", "secret", "generic", "shared", "-n", ns, "--from-literal=other=kept")
	applyTokenAt(t, ns, "merged", "creds", url+"/token", `  target:
    name: shared
    creationPolicy: Merge
`)
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/merged", "-n", ns, "--timeout=60s")
	if d := secretData(t, ns, "shared"); d["other"] != "kept" || d["access_token"] == "" {
		t.Fatalf("the shared Secret has keys %v", keysOf(d))
	}
	eventually(t, 10*time.Second, "the finalizer", func() bool {
		return mustKubectl(t, "get", "oct", "merged", "-n", ns, "-o", "jsonpath={.metadata.finalizers}") != ""
	})
	mustKubectl(t, "delete", "oct", "merged", "-n", ns, "--timeout=30s")
	if d := secretData(t, ns, "shared"); d["other"] != "kept" || d["access_token"] != "" {
		t.Fatalf("after the object was deleted the shared Secret has keys %v, want only other", keysOf(d))
	}
}

// TestRefreshStateSecretDeleted takes the rare path on which the manager
// deletes a Secret: an object whose endpoint issued a refresh token (kept
// in a state Secret) moves to an endpoint that issues none.
func TestRefreshStateSecretDeleted(t *testing.T) {
	const ns, id, secret = "refreshstate", "refreshstate-client", "r3fresh:/+ state"
	srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{id: secret}, ExpiresIn: 3600, IssueRefreshTokens: true})
	url, stop := srv.Start()
	t.Cleanup(stop)
	foNamespace(t, ns, id, secret, url)
	// Refresh tokens are kept only when asked for with the client-credentials grant.
	mustKubectl(t, "patch", "oct", "api", "-n", ns, "--type=merge", "-p", `{"spec":{"refresh":{"useRefreshToken":true}}}`)
	requestRefresh(t, ns, "api")
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/api", "-n", ns, "--timeout=60s")
	state := "api-tokensync-state"
	eventually(t, 20*time.Second, "the state Secret with the refresh token", func() bool {
		_, err := kubectl("get", "secret", state, "-n", ns)
		return err == nil
	})
	for _, v := range secretData(t, ns, state) {
		usedSecrets = append(usedSecrets, v)
	}
	// An endpoint that issues no refresh token: the state Secret goes.
	plain := tokenserver.New(tokenserver.Options{Clients: map[string]string{id: secret}, ExpiresIn: 3600})
	plainURL, stopPlain := plain.Start()
	t.Cleanup(stopPlain)
	mustKubectl(t, "patch", "oct", "api", "-n", ns, "--type=merge", "-p", `{"spec":{"provider":{"tokenURL":"`+plainURL+`/token"}}}`)
	requestRefresh(t, ns, "api")
	eventually(t, 30*time.Second, "the state Secret to be deleted", func() bool {
		_, err := kubectl("get", "secret", state, "-n", ns)
		return err != nil
	})
}

// rbacUse is what one request needs: a verb on a resource (and
// subresource) of an API group.
type rbacUse struct{ group, resource, subresource, verb string }

func (u rbacUse) String() string {
	r := u.resource
	if u.subresource != "" {
		r += "/" + u.subresource
	}
	return fmt.Sprintf("%s %s (group %q)", u.verb, r, u.group)
}

// roleUse is a use that a role of config/ (by name: manager-role is a
// ClusterRole in config/rbac and a Role in config/namespaced) grants.
type roleUse struct {
	role string
	rbacUse
}

func (u roleUse) String() string { return u.role + ": " + u.rbacUse.String() }

// unseenAllowed lists the permissions the manager needs that the suite's
// requests do not show in the audit log, and why. Keep it short.
var unseenAllowed = map[roleUse]string{
	{"manager-role", rbacUse{"oauth.tokensync.io", "oauthclienttokens", "finalizers", "update"}}: "checked by the OwnerReferencesPermissionEnforcement " +
		"admission plugin when the manager writes a Secret whose owner reference blocks the OAuthClientToken's deletion, not a request " +
		"of its own; the suite's API server runs that plugin, so every Secret write of the suite needs it",
	{"manager-role", rbacUse{"oauth.tokensync.io", "clusteroauthproviders", "", "list"}}: "the informers of the cluster-wide manager " +
		"get their initial list through the watch on the suite's API server (the audit log shows list requests only from the " +
		"namespace-scoped install, two per namespaced kind); ClusterOAuthProviders are watched only cluster-wide, and an informer " +
		"lists them when the API server does not stream initial lists",
}

// seenOrNot lists the permissions the manager needs whose use the suite
// shows or not depending on timing, and why.
var seenOrNot = map[roleUse]string{
	{"manager-role", rbacUse{"events.k8s.io", "events", "", "patch"}}: "client-go's event recorder patches an event into a series when " +
		"the same object (at the same resourceVersion) gets the same reason and action again within 6 minutes, as when two " +
		"managers record one event (the shard tests run an unsharded manager and two shards side by side)",
	{"manager-role", rbacUse{"authentication.k8s.io", "tokenreviews", "", "create"}}: "the TokenReview that refuses a ServiceAccount " +
		"token the API server accepts (keyless objects); the authorizer may name metrics-auth-role instead, which grants it too, " +
		"but that role is installed only with secure metrics",
}

// rbacReason names the role that allowed a request, in the audit event's
// authorization.k8s.io/reason annotation.
var rbacReason = regexp.MustCompile(`of (?:Cluster)?Role "tokensync-([^"]+)"`)

// TestManagerRBACMatchesAuditLog: every verb each role of config/ grants
// the manager's ServiceAccount (config/rbac, config/namespaced's Roles and
// the optional config/rollout-restart) allowed one of its requests during
// the suite, or is in unseenAllowed; and every request it made was allowed
// by a role config/ grants (a refusal counts as a need too).
func TestManagerRBACMatchesAuditLog(t *testing.T) {
	granted := grantedToManager(t)
	used, refused := auditedUses(t)
	if len(used) == 0 {
		t.Fatal("no request of the manager in the audit log")
	}
	grantedAny := map[rbacUse]bool{}
	for u := range granted {
		grantedAny[u.rbacUse] = true
	}
	for u, n := range refused {
		t.Logf("refused %d time(s): %s", n, u)
		if !grantedAny[u] {
			t.Errorf("the manager was refused %s, which config/ does not grant it", u)
		}
	}
	for u := range used {
		if !granted[u] {
			t.Errorf("the audit log shows %s, which config/ does not grant", u)
		}
	}
	var unused []string
	for u := range granted {
		if used[u] > 0 {
			continue
		}
		if reason, ok := unseenAllowed[u]; ok {
			t.Logf("granted and needed, but no request shows it: %s: %s", u, reason)
			continue
		}
		if reason, ok := seenOrNot[u]; ok {
			t.Logf("granted and needed, not shown by this run: %s: %s", u, reason)
			continue
		}
		unused = append(unused, u.String())
	}
	slices.Sort(unused)
	for _, u := range unused {
		t.Errorf("config/ grants the manager %s, which no request of the suite used: drop it (or make the suite use it)", u)
	}
	for u := range seenOrNot {
		if !granted[u] {
			t.Errorf("seenOrNot lists %s, which config/ no longer grants", u)
		}
	}
	for u := range unseenAllowed {
		if !granted[u] {
			t.Errorf("unseenAllowed lists %s, which config/ no longer grants", u)
		}
		if used[u] > 0 {
			t.Errorf("unseenAllowed lists %s, which the audit log shows used: remove it from the list", u)
		}
	}
	var seen []string
	for u, n := range used {
		seen = append(seen, fmt.Sprintf("%s: %d", u, n))
	}
	slices.Sort(seen)
	t.Logf("the manager's requests by the role that allowed them:\n  %s", strings.Join(seen, "\n  "))
}

// grantedToManager expands the rules of every Role and ClusterRole that a
// binding under config/rbac, config/rollout-restart or
// config/namespaced/signing-key gives the manager's ServiceAccount
// (controller-manager, tokensync-controller-manager where no name prefix
// applies).
func grantedToManager(t *testing.T) map[roleUse]bool {
	t.Helper()
	roles := map[string][]rbacv1.PolicyRule{}
	bound := map[string]bool{}
	for _, dir := range []string{"rbac", "rollout-restart", filepath.Join("namespaced", "signing-key")} {
		files, err := filepath.Glob(filepath.Join(repoRoot, "config", dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range strings.Split(string(data), "\n---\n") {
				var obj struct {
					Kind     string                `json:"kind"`
					Metadata struct{ Name string } `json:"metadata"`
					Rules    []rbacv1.PolicyRule   `json:"rules"`
					RoleRef  rbacv1.RoleRef        `json:"roleRef"`
					Subjects []rbacv1.Subject      `json:"subjects"`
				}
				if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				switch obj.Kind {
				case "Role", "ClusterRole":
					roles[obj.Metadata.Name] = obj.Rules
				case "RoleBinding", "ClusterRoleBinding":
					for _, s := range obj.Subjects {
						if s.Kind == "ServiceAccount" && (s.Name == "controller-manager" || s.Name == "tokensync-controller-manager") {
							bound[obj.RoleRef.Name] = true
						}
					}
				}
			}
		}
	}
	granted := map[roleUse]bool{}
	for name := range bound {
		rules, ok := roles[name]
		if !ok {
			t.Fatalf("config/ binds the manager to %s, which it does not define", name)
		}
		for _, r := range rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					resource, sub, _ := strings.Cut(res, "/")
					for _, v := range r.Verbs {
						granted[roleUse{name, rbacUse{g, resource, sub, v}}] = true
					}
				}
			}
		}
	}
	if len(granted) == 0 {
		t.Fatal("config/ grants the manager nothing")
	}
	return granted
}

// auditedUses reads the audit log: what the manager's requests needed, by
// the role of config/ that allowed them, and those the API server refused
// (403), with their counts. A server-side apply that created its object
// (patch, 201) needed create as well.
func auditedUses(t *testing.T) (used map[roleUse]int, refused map[rbacUse]int) {
	t.Helper()
	f, err := os.Open(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	used, refused = map[roleUse]int{}, map[rbacUse]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Stage string `json:"stage"`
			Verb  string `json:"verb"`
			User  struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef *struct {
				APIGroup    string `json:"apiGroup"`
				Resource    string `json:"resource"`
				Subresource string `json:"subresource"`
			} `json:"objectRef"`
			ResponseStatus *struct {
				Code int `json:"code"`
			} `json:"responseStatus"`
			Annotations map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		// A watch has a ResponseStarted event too; count each request once.
		if ev.Stage != "ResponseComplete" || ev.User.Username != managerUser || ev.ObjectRef == nil {
			continue
		}
		u := rbacUse{ev.ObjectRef.APIGroup, ev.ObjectRef.Resource, ev.ObjectRef.Subresource, ev.Verb}
		if ev.ResponseStatus != nil && ev.ResponseStatus.Code == 403 {
			refused[u]++
			continue
		}
		m := rbacReason.FindStringSubmatch(ev.Annotations["authorization.k8s.io/reason"])
		if m == nil {
			continue // allowed by a role of the cluster's own (discovery)
		}
		used[roleUse{m[1], u}]++
		if ev.Verb == "patch" && ev.ResponseStatus != nil && ev.ResponseStatus.Code == 201 {
			u.verb = "create"
			used[roleUse{m[1], u}]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return used, refused
}
