package dpop

import (
	"strings"
	"testing"
	"time"
)

func TestNonces(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	now := t0
	clock := func() time.Time { return now }
	n, err := NewNonces(key, time.Minute, clock)
	if err != nil {
		t.Fatal(err)
	}
	a := n.Current()
	if valid, current := n.Check(a); !valid || !current {
		t.Fatalf("Check(current) = %v, %v", valid, current)
	}
	// Another replica with the same key agrees; another key does not.
	same, _ := NewNonces(key, time.Minute, clock)
	other, _ := NewNonces([]byte(strings.Repeat("x", 32)), time.Minute, clock)
	if same.Current() != a || other.Current() == a {
		t.Fatal("nonces do not depend on the key alone")
	}
	if valid, _ := other.Check(a); valid {
		t.Fatal("a nonce under another key passes")
	}
	// Rotation: the next window has a new nonce, the old one still passes
	// (not current), and is refused a window later.
	now = now.Add(time.Minute)
	b := n.Current()
	if b == a {
		t.Fatal("nonce did not rotate")
	}
	if valid, current := n.Check(a); !valid || current {
		t.Fatalf("previous window: Check = %v, %v; want valid, not current", valid, current)
	}
	now = now.Add(time.Minute)
	if valid, _ := n.Check(a); valid {
		t.Fatal("a nonce two windows old passes")
	}
	// A nonce from the future (a replica's clock ahead) is not accepted
	// either: only current and previous.
	now = t0
	if valid, _ := n.Check(b); valid {
		t.Fatal("next window's nonce passes")
	}
	for _, bad := range []string{"", "AAAA", a + "A", strings.ToUpper(a), a[:42] + "!"} {
		if valid, _ := n.Check(bad); valid && bad != a {
			t.Errorf("Check(%q) valid", bad)
		}
	}
	if _, err := NewNonces(key[:31], 0, nil); err == nil {
		t.Error("a 31-byte key accepted")
	}
	if _, err := NewNonces(key, time.Millisecond, nil); err == nil {
		t.Error("a 1ms window accepted")
	}
	// The nonce does not reveal the key's bytes or the time.
	if strings.Contains(a, "kkkk") {
		t.Error("nonce shows the key")
	}
}

// TestNoncesPreviousKey: during a fleet key rotation, replicas issuing
// under either key accept each other's nonces (valid, not current: the
// answer brings the replica's own), and issue only under their own key.
func TestNoncesPreviousKey(t *testing.T) {
	oldKey, newKey := []byte(strings.Repeat("o", 32)), []byte(strings.Repeat("n", 32))
	now := t0
	clock := func() time.Time { return now }
	before, _ := NewNonces(oldKey, time.Minute, clock, newKey) // step 1: FLEET_KEY old, FLEET_KEY_PREVIOUS new
	after, _ := NewNonces(newKey, time.Minute, clock, oldKey)  // step 2: FLEET_KEY new, FLEET_KEY_PREVIOUS old
	only, _ := NewNonces(newKey, time.Minute, clock)
	if before.Current() == after.Current() || after.Current() != only.Current() {
		t.Fatal("nonces are not issued under the replica's own key")
	}
	for _, tc := range []struct {
		name string
		by   *Nonces
		n    string
	}{{"new key's nonce at an old-key replica", before, after.Current()}, {"old key's nonce at a new-key replica", after, before.Current()}} {
		if valid, current := tc.by.Check(tc.n); !valid || current {
			t.Errorf("%s: Check = %v, %v; want valid, not current", tc.name, valid, current)
		}
	}
	old := before.Current()
	now = now.Add(time.Minute)
	if valid, current := after.Check(old); !valid || current {
		t.Errorf("previous key, previous window: Check = %v, %v; want valid, not current", valid, current)
	}
	now = now.Add(time.Minute)
	if valid, _ := after.Check(old); valid {
		t.Error("previous key's nonce two windows old passes")
	}
	if valid, _ := only.Check(before.Current()); valid {
		t.Error("a nonce under a key no longer configured passes")
	}
	if _, err := NewNonces(newKey, 0, nil, oldKey[:31]); err == nil {
		t.Error("a 31-byte previous key accepted")
	}
	if _, err := NewNonces(newKey, 0, nil, nil); err != nil {
		t.Errorf("an empty previous key (FLEET_KEY_PREVIOUS unset): %v", err)
	}
}
