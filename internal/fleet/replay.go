package fleet

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// SetNX sets key for ttl unless it is set, and reports whether it set it
// (Redis's SET NX PX): the fleet half of DPoP's one-use rule for proofs
// (dpop.FleetStore). key is already a hash (of the proof key's thumbprint
// and the proof's jti), so it is used as is: it names nothing a Redis
// reader could link to a token, and it is the same under every fleet key,
// which keeps a rotation from splitting the replicas' memory of proofs.
//
// A Redis writer can only make a proof look used (a refusal: fail closed)
// or forget one (a replay on another replica within the proof's life: the
// replica that saw it still refuses it, from its own memory). An error
// (Redis down, the breaker open) is returned: the caller's own memory then
// answers.
func (t *Tier) SetNX(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" || ttl <= 0 {
		return false, errors.New("fleet: SetNX needs a key and a positive ttl")
	}
	var fresh bool
	err := t.do(ctx, "replay", func(ctx context.Context) error {
		ok, err := t.rdb.SetNX(ctx, t.s.Prefix+"{"+key+"}", "1", max(ttl, time.Millisecond)).Result()
		fresh = ok
		return err
	})
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return fresh, err
}
