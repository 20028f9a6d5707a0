package token

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"pgregory.net/rapid"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/logging"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/renewal"
	"github.com/tokensync/tokensync/test/testutil"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// TestModel is a state-machine test: random sequences of what users,
// tenants and the world do to two objects that may name the same Secrets
// (spec edits, credentials rotations, Secret tampering, endpoint faults,
// clock advances, manager restarts, deletions), against the real API
// server and a token endpoint. After every step it checks the promises:
//
//  1. a Secret tokensync did not create never carries its ownerReference
//     and never loses a key tokensync did not write;
//  2. once reconciled and Ready, the target Secret and status match the spec;
//  3. no token is requested while a valid token for the current inputs
//     exists, unless a refresh was forced;
//  4. at most one object writes a Secret;
//  5. no token or secret appears in logs, events or status.
//
// make test runs a bounded number of sequences (TOKENSYNC_MODEL_CHECKS,
// default 6); make fuzz runs more. rapid replays the failures kept in
// testdata/rapid/TestModel first: they are the regression cases.
func TestModel(t *testing.T) {
	if f := flag.Lookup("rapid.checks"); f != nil && !isSet("rapid.checks") {
		checks := os.Getenv("TOKENSYNC_MODEL_CHECKS")
		if checks == "" {
			checks = "6"
		}
		_ = f.Value.Set(checks)
	}
	rapid.Check(t, func(rt *rapid.T) {
		m := newModel(t, rt)
		defer m.close()
		rt.Repeat(map[string]func(*rapid.T){
			"":          m.check,
			"reconcile": m.reconcile,
			"policy":    m.editPolicy,
			"retarget":  m.retarget,
			"schedule":  m.editSchedule,
			"type":      m.editType,
			"scopes":    m.editScopes,
			"rotate":    m.rotate,
			"tamper":    m.tamper,
			"user":      m.userSecret,
			"fault":     m.fault,
			"clock":     m.advance,
			"restart":   m.restart,
			"refresh":   m.refresh,
			"delete":    m.deleteObj,
			"create":    m.createObj,
		})
		m.checkLeaks()
	})
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

var (
	modelNames   = []string{"a", "b"}
	modelTargets = []string{"s1", "s2"}
)

// objModel is what the model knows of one object's spec.
type objModel struct {
	exists      bool
	policy      v1alpha1.CreationPolicy
	target      string
	secretType  corev1.SecretType
	renewBefore time.Duration
	scopes      []string
	// good is the token the object was last seen holding, valid for its
	// inputs, in the Secret of that name; nil when the model cannot vouch
	// for it (it was tampered with, the inputs changed, a refresh was
	// forced...).
	good *goodToken
}

type goodToken struct {
	secret             string
	issuedAt, expireAt time.Time
	inputs             int // the inputs epoch it was obtained with
}

type model struct {
	t      *testing.T
	rt     *rapid.T
	h      *harness
	srv    *tokenserver.Server
	url    string
	logs   *testutil.SyncBuffer
	objs   map[string]*objModel
	epoch  int // bumped by every change of the inputs
	secret string
	// users holds the Secrets a user created, with the keys they wrote.
	users    map[string]map[string]string
	secrets  []string // every client secret used
	refreshN int
}

func newModel(t *testing.T, rt *rapid.T) *model {
	h := newHarness(t)
	m := &model{t: t, rt: rt, h: h, objs: map[string]*objModel{}, users: map[string]map[string]string{}, logs: &testutil.SyncBuffer{}}
	m.srv, m.url = providerServer(h, tokenserver.Options{
		Clients: map[string]string{"model": "model-secret-0"}, ExpiresIn: 3600,
		AllowedScopes: []string{"read", "write"}, IssueRefreshTokens: true, Now: h.clock.Now,
	})
	m.secret = "model-secret-0"
	m.secrets = append(m.secrets, m.secret)
	// Everything the reconciler logs, at the most verbose level.
	// Capped as the manager caps it (cmd/main.go).
	log := logging.Cap(zap.New(zap.WriteTo(m.logs), zap.UseDevMode(true), zap.Level(zapcore.Level(-10))))
	h.ctx = ctrl.LoggerInto(h.ctx, log)
	h.r.Recorder = events.NewFakeRecorder(10000)
	h.recorder = h.r.Recorder.(*events.FakeRecorder)
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("model"), "client_secret": []byte(m.secret)})
	for _, name := range modelNames {
		m.objs[name] = &objModel{policy: v1alpha1.CreationPolicyOwner, target: "s1", secretType: corev1.SecretTypeOpaque}
		m.create(name)
	}
	return m
}

func (m *model) close() {}

func (m *model) create(name string) {
	om := m.objs[name]
	om.exists, om.good = true, nil
	m.h.createToken(name, "creds", func(o *v1alpha1.OAuthClientToken) { m.applySpec(o, om) })
}

func (m *model) applySpec(o *v1alpha1.OAuthClientToken, om *objModel) {
	o.Spec.Provider.TokenURL = m.url + "/token"
	o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodClientSecretBasic
	o.Spec.Provider.Scopes = om.scopes
	o.Spec.Target = &v1alpha1.TargetSpec{Name: om.target, CreationPolicy: om.policy, Type: om.secretType, Labels: map[string]v1alpha1.LabelValue{"model": "yes"}}
	o.Spec.Refresh = &v1alpha1.RefreshSpec{UseRefreshToken: ptr.To(true)}
	if om.renewBefore > 0 {
		o.Spec.Refresh.RenewBefore = &metav1.Duration{Duration: om.renewBefore}
	}
}

func (m *model) pick(rt *rapid.T) (string, *objModel) {
	name := rapid.SampledFrom(modelNames).Draw(rt, "object")
	return name, m.objs[name]
}

func (m *model) edit(rt *rapid.T, change func(*objModel)) {
	name, om := m.pick(rt)
	if !om.exists {
		rt.Skip("object deleted")
	}
	change(om)
	m.h.edit(name, func(o *v1alpha1.OAuthClientToken) { m.applySpec(o, om) })
}

func (m *model) editPolicy(rt *rapid.T) {
	p := rapid.SampledFrom([]v1alpha1.CreationPolicy{v1alpha1.CreationPolicyOwner, v1alpha1.CreationPolicyOrphan, v1alpha1.CreationPolicyMerge}).Draw(rt, "policy")
	m.edit(rt, func(om *objModel) { om.policy = p })
}

func (m *model) retarget(rt *rapid.T) {
	target := rapid.SampledFrom(modelTargets).Draw(rt, "target")
	m.edit(rt, func(om *objModel) { om.target = target })
}

func (m *model) editSchedule(rt *rapid.T) {
	rb := rapid.SampledFrom([]time.Duration{0, 5 * time.Minute, 30 * time.Minute, 50 * time.Minute}).Draw(rt, "renewBefore")
	m.edit(rt, func(om *objModel) { om.renewBefore = rb })
}

func (m *model) editType(rt *rapid.T) {
	typ := rapid.SampledFrom([]corev1.SecretType{corev1.SecretTypeOpaque, "example.com/token"}).Draw(rt, "type")
	m.edit(rt, func(om *objModel) { om.secretType = typ })
}

func (m *model) editScopes(rt *rapid.T) {
	scopes := rapid.SampledFrom([][]string{nil, {"read"}, {"read", "write"}}).Draw(rt, "scopes")
	m.edit(rt, func(om *objModel) {
		if !slices.Equal(om.scopes, scopes) {
			om.good = nil // the provider spec is an input
		}
		om.scopes = scopes
	})
}

func (m *model) rotate(rt *rapid.T) {
	m.epoch++
	m.secret = fmt.Sprintf("model-secret-%d", m.epoch)
	m.secrets = append(m.secrets, m.secret)
	m.srv.SetClientSecret("model", m.secret)
	s := m.h.secret("creds")
	s.Data["client_secret"] = []byte(m.secret)
	if err := k8sClient.Update(m.h.ctx, s); err != nil {
		rt.Fatal(err)
	}
	m.h.syncCache(s)
	for _, om := range m.objs {
		om.good = nil
	}
}

// tamper does to a Secret what someone who may edit it could.
func (m *model) tamper(rt *rapid.T) {
	name := rapid.SampledFrom(modelTargets).Draw(rt, "secret")
	s := m.h.secretOrNil(name)
	if s == nil {
		rt.Skip("no such Secret")
	}
	how := rapid.SampledFrom([]string{"token", "record", "delete", "key", "owner", "label"}).Draw(rt, "how")
	switch how {
	case "token":
		s.Data[v1alpha1.AccessTokenKey] = []byte("forged-token")
	case "record":
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[v1alpha1.ExpiresAtAnnotation] = "2099-01-01T00:00:00Z"
	case "key":
		s.Data["added-by-someone"] = []byte("x")
	case "owner":
		s.OwnerReferences = append(s.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "someone", UID: "00000000-0000-0000-0000-000000000001"})
	case "label":
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels["model"] = "edited"
	}
	var err error
	if how == "delete" {
		err = k8sClient.Delete(m.h.ctx, s)
		delete(m.users, name)
	} else {
		err = k8sClient.Update(m.h.ctx, s)
	}
	if err != nil {
		rt.Fatalf("tamper %s: %v", how, err)
	}
	m.h.syncCache(m.h.secretOrNilObject(name))
	for _, om := range m.objs {
		if om.good != nil && om.good.secret == name {
			om.good = nil
		}
	}
}

// userSecret has a user create a Secret of their own where none is.
func (m *model) userSecret(rt *rapid.T) {
	name := rapid.SampledFrom(modelTargets).Draw(rt, "secret")
	if m.h.secretOrNil(name) != nil {
		rt.Skip("exists")
	}
	keys := map[string]string{"user-key": "user-value-" + name}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.h.ns}, Data: map[string][]byte{"user-key": []byte(keys["user-key"])}}
	if err := k8sClient.Create(m.h.ctx, s); err != nil {
		rt.Fatal(err)
	}
	m.h.syncCache(s)
	m.users[name] = keys
}

func (m *model) fault(rt *rapid.T) {
	switch rapid.SampledFrom([]string{"unavailable", "invalid_client", "slow_down"}).Draw(rt, "fault") {
	case "unavailable":
		m.srv.FailNext(1, http.StatusServiceUnavailable, "", nil)
	case "invalid_client":
		m.srv.FailNext(1, http.StatusUnauthorized, `{"error":"invalid_client"}`, nil)
	case "slow_down":
		m.srv.FailNext(1, http.StatusTooManyRequests, "", http.Header{"Retry-After": {"120"}})
	}
}

func (m *model) advance(rt *rapid.T) {
	m.h.clock.Step(rapid.SampledFrom([]time.Duration{time.Minute, 20 * time.Minute, 45 * time.Minute, 2 * time.Hour}).Draw(rt, "step"))
}

// restart replaces the reconciler: what it kept in memory is gone.
func (m *model) restart(*rapid.T) {
	r := newReconciler(m.h.r.Client, &oauth.Client{HTTPClient: httpClient, Now: m.h.clock.Now}, m.h.recorder, m.h.clock)
	m.h.r = r
}

func (m *model) refresh(rt *rapid.T) {
	m.refreshN++
	value := strconv.Itoa(m.refreshN)
	name, om := m.pick(rt)
	if !om.exists {
		rt.Skip("object deleted")
	}
	m.h.edit(name, func(o *v1alpha1.OAuthClientToken) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[v1alpha1.RefreshRequestedAnnotation] = value
	})
	om.good = nil
}

func (m *model) deleteObj(rt *rapid.T) {
	name, om := m.pick(rt)
	if !om.exists {
		rt.Skip("already deleted")
	}
	m.h.deleteObject(name)
	m.h.syncCache(&v1alpha1.OAuthClientToken{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.h.ns}})
	om.exists, om.good = false, nil
}

func (m *model) createObj(rt *rapid.T) {
	name, om := m.pick(rt)
	if om.exists {
		rt.Skip("exists")
	}
	m.create(name)
}

// reconcile runs one reconcile and checks that no token was requested
// while the object held a valid one for its inputs (invariant 3).
func (m *model) reconcile(rt *rapid.T) {
	name, om := m.pick(rt)
	if !om.exists {
		rt.Skip("object deleted")
	}
	before := len(m.srv.Issued())
	o := m.h.get(name)
	if _, err := m.h.r.Reconcile(m.h.ctx, ctrl.Request{NamespacedName: keyIn(m.h.ns, name)}); err != nil {
		rt.Fatalf("reconcile %s: %v", name, err)
	}
	after := m.h.get(name)
	m.h.syncCache(after, m.h.secretOrNilObject(after.TargetName()))
	if g := om.good; g != nil && len(m.srv.Issued()) > before && g.inputs == m.epoch {
		s := renewal.Schedule{RenewBefore: om.renewBefore, DefaultLifetime: time.Hour, MinInterval: DefaultMinRefreshInterval}
		renewAt := s.RenewAt(renewal.Token{IssuedAt: g.issuedAt, ExpiresAt: g.expireAt})
		if m.h.clock.Now().Before(renewAt) && forceValue(o) == "" {
			rt.Fatalf("%s: a token was requested at %s while Secret %s held a valid one for the same inputs until its renewal at %s",
				name, m.h.clock.Now().Format(time.TimeOnly), g.secret, renewAt.Format(time.TimeOnly))
		}
	}
	if isReady(after) && after.Status.IssuedAt != nil && after.Status.ExpiresAt != nil {
		om.good = &goodToken{secret: after.Status.SecretName, issuedAt: after.Status.IssuedAt.Time, expireAt: after.Status.ExpiresAt.Time, inputs: m.epoch}
		if !slices.Equal(after.Spec.Provider.Scopes, om.scopes) {
			om.good = nil
		}
	} else if c := apimeta.FindStatusCondition(after.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		om.good = nil
	}
	if isReady(after) {
		m.checkReady(rt, name, om, after)
		for other, oom := range m.objs {
			if other != name && oom.good != nil && oom.good.secret == after.Status.SecretName {
				oom.good = nil // its token there was replaced
			}
		}
	}
	m.check(rt)
}

// checkReady checks invariant 2 for an object just reconciled and Ready:
// the Secret and status match the spec.
func (m *model) checkReady(rt *rapid.T, name string, om *objModel, o *v1alpha1.OAuthClientToken) {
	if o.Status.SecretName != om.target {
		rt.Fatalf("%s is Ready with status.secretName %q, target %q", name, o.Status.SecretName, om.target)
	}
	s := m.h.secretOrNil(om.target)
	if s == nil {
		rt.Fatalf("%s is Ready and its Secret %s does not exist", name, om.target)
	}
	if s.Annotations[v1alpha1.OwnerAnnotation] != name || len(s.Data[v1alpha1.AccessTokenKey]) == 0 || s.Labels["model"] != "yes" {
		rt.Fatalf("%s is Ready and Secret %s does not match: owner %q, token %v, label %q", name, om.target,
			s.Annotations[v1alpha1.OwnerAnnotation], len(s.Data[v1alpha1.AccessTokenKey]) > 0, s.Labels["model"])
	}
	created := s.Annotations[v1alpha1.OriginAnnotation] == "created"
	if got, want := controlledBy(s, o), created && om.policy == v1alpha1.CreationPolicyOwner; got != want {
		rt.Fatalf("%s is Ready with policy %s and Secret %s (created by tokensync: %v) has its controller reference: %v", name, om.policy, om.target, created, got)
	}
	if created && om.policy != v1alpha1.CreationPolicyMerge && s.Type != om.secretType {
		rt.Fatalf("%s is Ready with type %s and Secret %s has type %s", name, om.secretType, om.target, s.Type)
	}
	if _, isUsers := m.users[om.target]; isUsers && created {
		rt.Fatalf("the user's Secret %s is marked as created by tokensync", om.target)
	}
	if !o.Status.ExpiresAt.After(m.h.clock.Now()) {
		rt.Fatalf("%s is Ready with a token that expired at %s", name, o.Status.ExpiresAt)
	}
	if string(s.Data[v1alpha1.ExpiresAtKey]) != o.Status.ExpiresAt.UTC().Format(time.RFC3339) {
		rt.Fatalf("%s: Secret %s says the token expires at %s, status %s", name, om.target, s.Data[v1alpha1.ExpiresAtKey], o.Status.ExpiresAt)
	}
}

func isReady(o *v1alpha1.OAuthClientToken) bool {
	return o.Status.ObservedGeneration == o.Generation && apimeta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ConditionReady)
}

// check checks invariants 1, 2 and 4.
func (m *model) check(rt *rapid.T) {
	// 1. The Secrets users created keep their keys and never get
	// tokensync's ownerReference.
	for name, keys := range m.users {
		s := m.h.secretOrNil(name)
		if s == nil {
			rt.Fatalf("the user's Secret %s was deleted", name)
		}
		for k, v := range keys {
			if string(s.Data[k]) != v {
				rt.Fatalf("the user's Secret %s lost its key %s", name, k)
			}
		}
		for _, ref := range s.OwnerReferences {
			if ref.Kind == "OAuthClientToken" {
				rt.Fatalf("the user's Secret %s has an ownerReference to OAuthClientToken %s", name, ref.Name)
			}
		}
	}
	writers := map[string][]string{}
	for _, name := range modelNames {
		if !m.objs[name].exists {
			continue
		}
		if o := m.h.get(name); isReady(o) {
			writers[o.Status.SecretName] = append(writers[o.Status.SecretName], name)
		}
	}
	// 4. At most one object writes a Secret.
	for secret, names := range writers {
		if len(names) > 1 {
			rt.Fatalf("Secret %s is written by %v", secret, names)
		}
	}
}

// checkLeaks checks invariant 5 over the whole sequence.
func (m *model) checkLeaks() {
	var secrets []string
	secrets = append(secrets, m.secrets...)
	for _, it := range m.srv.Issued() {
		secrets = append(secrets, it.AccessToken, it.RefreshToken)
	}
	var evs []string
	for {
		select {
		case e := <-m.h.recorder.Events:
			evs = append(evs, e)
			continue
		default:
		}
		break
	}
	var status bytes.Buffer
	for _, name := range modelNames {
		o := &v1alpha1.OAuthClientToken{}
		if err := k8sClient.Get(m.h.ctx, keyIn(m.h.ns, name), o); err == nil {
			b, _ := json.Marshal(o.Status)
			status.Write(b)
		} else if !apierrors.IsNotFound(err) {
			m.rt.Fatal(err)
		}
	}
	for where, text := range map[string]string{"logs": m.logs.String(), "events": strings.Join(evs, "\n"), "status": status.String()} {
		if leaks := testutil.Leaks(text, secrets...); len(leaks) > 0 {
			if os.Getenv("MODEL_DEBUG") != "" {
				for _, line := range strings.Split(text, "\n") {
					for _, sec := range secrets {
						if len(sec) >= 6 && strings.Contains(line, sec) {
							fmt.Println("LEAK:", line)
						}
					}
				}
			}
			m.rt.Fatalf("%s: %v", where, leaks)
		}
	}
}
