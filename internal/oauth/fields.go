package oauth

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// ResponseFields are dot-separated paths (object keys from the top of the
// JSON body) of the token fields in a non-standard response, such as
// data.access_token. An empty path means the RFC 6749 name at the top.
type ResponseFields struct {
	AccessToken      string
	TokenType        string
	ExpiresIn        string
	RefreshToken     string
	RefreshExpiresIn string
	Scope            string
	IDToken          string
}

func (f ResponseFields) isZero() bool { return f == ResponseFields{} }

// paths pairs each configured path with the RFC 6749 name it stands for.
func (f ResponseFields) paths() [][2]string {
	var out [][2]string
	for _, p := range [][2]string{
		{"access_token", f.AccessToken},
		{"token_type", f.TokenType},
		{"expires_in", f.ExpiresIn},
		{"refresh_token", f.RefreshToken},
		{"refresh_expires_in", f.RefreshExpiresIn},
		{"scope", f.Scope},
		{"id_token", f.IDToken},
	} {
		if p[1] != "" {
			out = append(out, p)
		}
	}
	return out
}

// liftFields copies the values at the configured paths to the top-level RFC
// 6749 names of a JSON object body. ok is false when the body is not a JSON
// object (it is then decoded as it is). missing names the first
// configured path with no value, "" when all were found.
func liftFields(body []byte, fields ResponseFields) (out []byte, missing string, ok bool) {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, "", false
	}
	flat := make(map[string]any, len(obj)+7)
	for k, v := range obj {
		flat[k] = v
	}
	for _, p := range fields.paths() {
		v, found := lookup(obj, p[1])
		if !found {
			delete(flat, p[0])
			if missing == "" {
				missing = p[1]
			}
			continue
		}
		flat[p[0]] = v
	}
	// expires_in must be a number; a numeric string found at a
	// path is converted, anything else dropped (then it is as if absent).
	if v, ok := flat["expires_in"]; ok {
		switch x := v.(type) {
		case json.Number:
		case string:
			if _, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				flat["expires_in"] = json.Number(strings.TrimSpace(x))
			} else {
				delete(flat, "expires_in")
			}
		default:
			delete(flat, "expires_in")
		}
	}
	out, err := json.Marshal(flat)
	if err != nil {
		return nil, "", false
	}
	return out, missing, true
}

// lookup follows a dot-separated path of object keys. Only string, number
// and boolean leaves count as found.
func lookup(obj map[string]any, path string) (any, bool) {
	var cur any = obj
	for _, key := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	switch cur.(type) {
	case string, json.Number, bool:
		return cur, true
	}
	return nil, false
}
