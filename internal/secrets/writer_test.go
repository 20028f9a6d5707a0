package secrets

import (
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestAPIMessageNeverQuotesData: an Invalid error from the API server may
// quote the values of the fields it refuses; for a Secret those are its
// data. apiMessage, whose text reaches conditions, events and logs, keeps
// the field and the kind of error and drops the value, and keeps what
// other fields say.
func TestAPIMessageNeverQuotesData(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.the-token-itself"
	err := apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "target", field.ErrorList{
		field.Invalid(field.NewPath("data").Key(".dockerconfigjson"), token, "invalid JSON: "+token),
		field.Invalid(field.NewPath("metadata", "labels"), "bad value", "a label value must be 63 characters or less"),
	})
	msg := apiMessage(err)
	if strings.Contains(msg, token) || strings.Contains(msg, "the-token-itself") {
		t.Fatalf("the message quotes the Secret's data: %q", msg)
	}
	if !strings.Contains(msg, "data[.dockerconfigjson]: FieldValueInvalid") || !strings.Contains(msg, "63 characters") {
		t.Fatalf("the message lost what is wrong: %q", msg)
	}
	if got := apiMessage(errors.New("plain")); got != "plain" {
		t.Fatalf("a non-API error: %q", got)
	}
}
