package token

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/renewal"
)

// The conditions, as api/v1alpha1/conditions.go documents them:
//
//   - Ready is True while the target Secret holds an unexpired token
//     obtained for the current spec and inputs, whatever else is failing.
//   - Reconciling is True while a transient failure is being retried.
//   - Stalled is True when the last attempt failed in a way that needs a
//     human. With a valid token held, Ready stays True beside it: kstatus
//     then reads Failed, and consumers still have a working token.
//
// observedGeneration advances on success only once the Secret matches the
// spec; on failure it says which spec the failure is about.

// summarize records the outcome in status, emits events on transitions,
// and returns when to reconcile again.
func (r *Reconciler) summarize(obj *v1alpha1.OAuthClientToken, o *outcome) time.Duration {
	now := r.Clock.Now()
	st := &obj.Status
	if failure.IsThrottled(o.err) {
		// Held back by the manager's own limits: nothing to report.
		return max(failure.RetryAfterOf(o.err), time.Second)
	}
	if o.attempted {
		if v := obj.Annotations[v1alpha1.RefreshRequestedAnnotation]; v != "" {
			st.LastHandledRefreshRequest = v
		}
	}
	if o.endpoint != "" {
		st.TokenEndpoint = oauth.RedactedURL(o.endpoint)
	}
	hadToken := st.IssuedAt != nil
	d := o.decision
	if o.held != nil && !o.cleared {
		s := r.schedule(obj)
		rt := renewalToken(obj, o.held)
		d.ExpiresAt, d.RenewAt = s.Expiry(*rt), s.RenewAt(*rt)
		st.TokenType = o.held.TokenType
		st.IssuedAt = timePtr(o.held.IssuedAt)
		st.ExpiresAt = timePtr(d.ExpiresAt)
		st.RenewAt = timePtr(d.RenewAt)
	}
	valid := o.held != nil && !o.cleared && now.Before(d.ExpiresAt)
	if o.decision.Reason == renewal.BackingOff && o.err == nil {
		// A retry held back by backoff: the failure's status stands.
		if o.cleared {
			setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired,
				fmt.Sprintf("the token in Secret %s expired at %s and was removed (expiryPolicy Clear); %s", obj.TargetName(), formatTime(d.ExpiresAt), o.decision.Message))
		}
		return max(o.decision.Next.Sub(now), time.Second)
	}

	if o.err == nil {
		r.clearGate(obj)
		failedBefore := st.FailedAttempts
		if o.issued != nil {
			st.Scopes = o.issued.scopes
			st.LastGrant = o.issued.grant
			st.IssuedTokenType = o.issued.issuedTokenType
		}
		st.SecretName = obj.TargetName()
		st.FailedAttempts = 0
		st.LastFailureTime = nil
		setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady,
			fmt.Sprintf("Secret %s holds a token valid until %s; renewal at %s", obj.TargetName(), formatTime(d.ExpiresAt), formatTime(d.RenewAt)))
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionReconciling)
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionStalled)
		st.ObservedGeneration = obj.Generation
		if o.issued != nil {
			switch {
			case failedBefore > 0:
				r.event(obj, corev1.EventTypeNormal, v1alpha1.EventTokenRecovered, "Issue", "Token obtained after %d failed attempts; valid until %s", failedBefore, formatTime(d.ExpiresAt))
			case hadToken && o.decision.Reason == renewal.Due:
				// A routine renewal: status (issuedAt, expiresAt, renewAt)
				// and tokensync_token_requests_total record it; an Event
				// per renewal would be an API write per token and
				// lifetime that no one reads (docs/performance.md).
			case hadToken:
				// Forced, inputs changed, expired, Secret repaired.
				r.event(obj, corev1.EventTypeNormal, v1alpha1.EventTokenRotated, "Rotate", "New token written to Secret %s (%s); valid until %s", obj.TargetName(), o.decision.Reason, formatTime(d.ExpiresAt))
			default:
				r.event(obj, corev1.EventTypeNormal, v1alpha1.EventTokenIssued, "Issue", "Token written to Secret %s; valid until %s", obj.TargetName(), formatTime(d.ExpiresAt))
			}
		}
		return max(d.RenewAt.Sub(now), time.Second)
	}

	reason, stalled, _ := failure.ReasonOf(o.err)
	msg := o.err.Error()
	prevReason := ""
	if c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		prevReason = c.Reason
	}
	if c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReconciling); c != nil && c.Status == metav1.ConditionTrue {
		prevReason = c.Reason
	}
	st.FailedAttempts++
	st.LastFailureTime = timePtr(now.Truncate(time.Second))
	st.ObservedGeneration = obj.Generation
	if st.FailedAttempts == 1 || prevReason != reason {
		r.event(obj, corev1.EventTypeWarning, v1alpha1.EventTokenRequestFailed, "Refresh", "%s: %s", reason, msg)
	}
	validUntil := time.Time{}
	if valid {
		validUntil = d.ExpiresAt
	}
	delay := renewal.RetryDelay(st.FailedAttempts, stalled, now, validUntil, failure.RetryAfterOf(o.err), r.minRefreshInterval())
	if o.attemptKey != "" {
		r.setGate(obj, gate{key: o.attemptKey, notBefore: now.Add(delay), untilChange: reason == v1alpha1.ReasonSecretRejected})
	}

	if stalled {
		setCondition(obj, v1alpha1.ConditionStalled, metav1.ConditionTrue, reason, msg)
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionReconciling)
	} else {
		setCondition(obj, v1alpha1.ConditionReconciling, metav1.ConditionTrue, reason, msg)
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionStalled)
	}
	switch {
	case valid && o.current:
		// The consumer still holds a valid token for this spec.
		setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady,
			fmt.Sprintf("Secret %s holds a token valid until %s; renewal failing: %s", obj.TargetName(), formatTime(d.ExpiresAt), msg))
	case valid:
		setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, reason,
			fmt.Sprintf("%s (Secret %s still holds the token obtained with the previous inputs, valid until %s)", msg, obj.TargetName(), formatTime(d.ExpiresAt)))
	case o.held != nil && o.cleared:
		setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired,
			fmt.Sprintf("the token in Secret %s expired at %s and was removed (expiryPolicy Clear); renewal failing: %s", obj.TargetName(), formatTime(d.ExpiresAt), msg))
	case o.held != nil:
		setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired,
			fmt.Sprintf("the token in Secret %s expired at %s; renewal failing: %s", obj.TargetName(), formatTime(d.ExpiresAt), msg))
	case st.ExpiresAt != nil && !now.Before(st.ExpiresAt.Time) && st.SecretName == obj.TargetName() && expiryPolicy(obj) == v1alpha1.ExpiryPolicyClear:
		setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired,
			fmt.Sprintf("the token expired at %s and was removed from Secret %s (expiryPolicy Clear); renewal failing: %s", formatTime(st.ExpiresAt.Time), obj.TargetName(), msg))
	default:
		setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	}
	return delay
}

func (r *Reconciler) event(obj *v1alpha1.OAuthClientToken, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, action, note, args...)
	}
}

func setCondition(obj *v1alpha1.OAuthClientToken, condType string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            truncate(msg, 1024),
		ObservedGeneration: obj.Generation,
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func timePtr(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC())
	return &mt
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
