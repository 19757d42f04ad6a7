package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"
)

// Store persists the ledger. Implementations return ErrNotFound for missing rows and
// CodeConflict errors for taken unique fields.
type Store interface {
	Committer
	CreateUser(ctx context.Context, u *User, keyHash []byte, webhookSecret string) error
	User(ctx context.Context, id uuid.UUID) (*User, error)
	UserIDByKeyHash(ctx context.Context, hash []byte) (uuid.UUID, error)
	Users(ctx context.Context, tag string, p ListParams) (Page[User], error)
	UpdateUser(ctx context.Context, id uuid.UUID, patch UserPatch) (*User, error)
	CreateAccount(ctx context.Context, a *Account) error
	Account(ctx context.Context, id uuid.UUID) (*Account, error)
	Accounts(ctx context.Context, userID uuid.UUID, p ListParams) (Page[Account], error)
	// UpdateAccount applies patch (checked by CheckAccountPatch) with the account locked.
	UpdateAccount(ctx context.Context, id uuid.UUID, patch AccountPatch) (*Account, error)
	Entries(ctx context.Context, accountID uuid.UUID, p ListParams) (Page[Entry], error)
	// BalanceAt is the balance after the account's entries created at or before at (0 before
	// the first).
	BalanceAt(ctx context.Context, accountID uuid.UUID, at time.Time) (int64, error)
	// Statement fills st.OpeningBalance and st.Entries for st.AccountID over [st.From, st.To).
	Statement(ctx context.Context, st *Statement) error
	// Transactions lists the transactions f selects, newest first.
	Transactions(ctx context.Context, f TxFilter, p ListParams) (Page[Transaction], error)
	// Hold returns the hold and the owners of its accounts, its from account's first.
	Hold(ctx context.Context, id uuid.UUID) (*Hold, []uuid.UUID, error)
	// DueHolds lists up to limit pending holds that expire at or before now, oldest first.
	DueHolds(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error)
	// Transaction returns the transaction and the owners of its customer accounts.
	Transaction(ctx context.Context, id uuid.UUID) (*Transaction, []uuid.UUID, error)
	Reconcile(ctx context.Context) (map[string]CurrencyBalance, error)
	// Purge deletes the tagged users and all they own, returning their API key hashes.
	Purge(ctx context.Context, tag string) (PurgeResult, [][]byte, error)
}

// KeyCache remembers which user an API key hash belongs to, in front of the store. It may fail:
// the store stays the authority.
type KeyCache interface {
	Get(ctx context.Context, hash []byte) (uuid.UUID, bool, error)
	Set(ctx context.Context, hash []byte, userID uuid.UUID) error
	Delete(ctx context.Context, hashes [][]byte) error
}

// UserPatch changes a user; nil fields stay as they are.
type UserPatch struct {
	Name       *string
	WebhookURL **string // set to a nil *string to clear it
}

// Config configures a Service.
type Config struct {
	AdminToken           string
	AllowPrivateWebhooks bool
	// KeyCache is optional; so is OnCacheError, told when the cache fails.
	KeyCache     KeyCache
	OnCacheError func(op string, err error)
}

// Service is the application: every use case, with the authorization rules of API.md.
type Service struct {
	cfg        Config
	store      Store
	batcher    *Batcher
	local      localKeyCache
	keyReads   singleflight.Group // concurrent requests with one key share its lookup
	keySlots   chan struct{}      // bounds the store reads of API keys in flight
	keyLookups atomic.Int64
}

// keyLookupSlots is how many API key reads may use the store at once, so that requests with
// made-up keys cannot take the connections the write path needs.
const keyLookupSlots = 4

func NewService(store Store, batcher *Batcher, cfg Config) *Service {
	return &Service{cfg: cfg, store: store, batcher: batcher, local: localKeyCache{m: map[string]localKey{}},
		keySlots: make(chan struct{}, keyLookupSlots)}
}

// --- authentication ---

var errUnauthorized = Errorf(CodeUnauthorized, "a valid bearer token is required")

// Authenticate resolves a bearer token to a caller.
func (s *Service) Authenticate(ctx context.Context, token string) (Caller, error) {
	if token == "" {
		return Caller{}, errUnauthorized
	}
	if s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1 {
		return Caller{Admin: true}, nil
	}
	if !wellFormedKey(token) {
		return Caller{}, errUnauthorized
	}
	sum := sha256.Sum256([]byte(token))
	hash := sum[:]
	if id, known, ok := s.local.get(hash); ok {
		if !known {
			return Caller{}, errUnauthorized
		}
		return Caller{UserID: id}, nil
	}
	id, err, _ := s.keyReads.Do(string(hash), func() (any, error) { return s.lookupKey(ctx, hash) })
	if err != nil {
		return Caller{}, err
	}
	return Caller{UserID: id.(uuid.UUID)}, nil
}

// lookupKey finds the user of an API key hash in the shared cache, else in the store, and
// remembers the answer locally, an unknown key included: a flood of made-up keys costs the
// database one read per key and per few seconds, through at most keyLookupSlots connections.
func (s *Service) lookupKey(ctx context.Context, hash []byte) (uuid.UUID, error) {
	if c := s.cfg.KeyCache; c != nil {
		id, ok, err := c.Get(ctx, hash)
		if err != nil {
			s.cacheError("get", err)
		} else if ok {
			s.local.set(hash, id, true)
			return id, nil
		}
	}
	select {
	case s.keySlots <- struct{}{}:
		defer func() { <-s.keySlots }()
	case <-ctx.Done():
		return uuid.Nil, ctx.Err()
	}
	s.keyLookups.Add(1)
	id, err := s.store.UserIDByKeyHash(ctx, hash)
	if ErrorCode(err) == CodeNotFound {
		s.local.set(hash, uuid.Nil, false)
		return uuid.Nil, errUnauthorized
	} else if err != nil {
		return uuid.Nil, err
	}
	s.local.set(hash, id, true)
	if c := s.cfg.KeyCache; c != nil {
		if err := c.Set(ctx, hash, id); err != nil {
			s.cacheError("set", err)
		}
	}
	return id, nil
}

// KeyLookups is how many API keys were looked up in the store.
func (s *Service) KeyLookups() int64 { return s.keyLookups.Load() }

// wellFormedKey reports whether token has the shape of the API keys CreateUser makes: the
// prefix and 32 random bytes in unpadded base64url. Anything else is refused unread.
func wellFormedKey(token string) bool {
	rest, ok := strings.CutPrefix(token, apiKeyPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(apiKeyBytes) {
		return false
	}
	for i := range len(rest) {
		c := rest[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Service) cacheError(op string, err error) {
	if s.cfg.OnCacheError != nil {
		s.cfg.OnCacheError(op, err)
	}
}

// localKeyCache spares the key cache a round trip for callers seen in the last few seconds.
// Its short life bounds how long a purged user's key keeps working on other instances.
type localKeyCache struct {
	mu sync.RWMutex
	m  map[string]localKey
}

type localKey struct {
	id      uuid.UUID
	known   bool // false: no user has this key
	expires time.Time
}

const (
	localKeyTTL   = 10 * time.Second
	unknownKeyTTL = 5 * time.Second
)

// get returns what is remembered of hash: its user, or known false for a key no user has.
func (c *localKeyCache) get(hash []byte) (id uuid.UUID, known, ok bool) {
	c.mu.RLock()
	k, ok := c.m[string(hash)]
	c.mu.RUnlock()
	if !ok || time.Now().After(k.expires) {
		return uuid.Nil, false, false
	}
	return k.id, k.known, true
}

func (c *localKeyCache) set(hash []byte, id uuid.UUID, known bool) {
	ttl := localKeyTTL
	if !known {
		ttl = unknownKeyTTL
	}
	c.mu.Lock()
	if len(c.m) >= 100_000 {
		clear(c.m)
	}
	c.m[string(hash)] = localKey{id: id, known: known, expires: time.Now().Add(ttl)}
	c.mu.Unlock()
}

func (c *localKeyCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// --- users ---

const (
	apiKeyPrefix = "tk_"
	apiKeyBytes  = 32
)

var errForbidden = Errorf(CodeForbidden, "this action needs the admin token")

// NewUserInput is a request to create a user.
type NewUserInput struct {
	Name       string
	Email      string
	WebhookURL *string
	Tags       []string
}

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

func validName(name string) string {
	if strings.TrimSpace(name) == "" {
		return "is required"
	}
	if utf8.RuneCountInString(name) > 200 {
		return "must be at most 200 characters"
	}
	return storableText(name)
}

// storableText returns why s cannot be stored as text, or "": PostgreSQL refuses NUL
// characters and invalid UTF-8, and must never be the one to find out.
func storableText(s string) string {
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return "must be UTF-8 text without NUL characters"
	}
	return ""
}

func (s *Service) CreateUser(ctx context.Context, c Caller, in NewUserInput) (*NewUser, error) {
	if !c.Admin {
		return nil, errForbidden
	}
	var fields []FieldError
	if msg := validName(in.Name); msg != "" {
		fields = append(fields, FieldError{Field: "name", Message: msg})
	}
	email := strings.TrimSpace(in.Email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || a.Name != "" || len(email) > 254 {
		fields = append(fields, FieldError{Field: "email", Message: "must be a valid email address"})
	}
	if in.WebhookURL != nil {
		if msg := ValidateWebhookURL(*in.WebhookURL, s.cfg.AllowPrivateWebhooks); msg != "" {
			fields = append(fields, FieldError{Field: "webhook_url", Message: msg})
		}
	}
	if len(in.Tags) > 20 {
		fields = append(fields, FieldError{Field: "tags", Message: "must have at most 20 tags"})
	}
	for _, t := range in.Tags {
		if !tagRE.MatchString(t) {
			fields = append(fields, FieldError{Field: "tags", Message: "each tag must be 1-64 letters, digits or _.:-"})
			break
		}
	}
	if len(fields) > 0 {
		return nil, Invalid(fields...)
	}
	tags := in.Tags
	if tags == nil {
		tags = []string{}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &NewUser{
		User: User{ID: uuid.Must(uuid.NewV7()), Name: in.Name, Email: strings.ToLower(email),
			WebhookURL: in.WebhookURL, Tags: tags, CreatedAt: now, UpdatedAt: now},
		APIKey:        apiKeyPrefix + randomString(apiKeyBytes, base64.RawURLEncoding),
		WebhookSecret: "whsec_" + randomString(32, base64.StdEncoding),
	}
	sum := sha256.Sum256([]byte(u.APIKey))
	if err := s.store.CreateUser(ctx, &u.User, sum[:], u.WebhookSecret); err != nil {
		return nil, err
	}
	return u, nil
}

func randomString(n int, enc *base64.Encoding) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return enc.EncodeToString(b)
}

func notFound(what string, id uuid.UUID) error {
	return Errorf(CodeNotFound, "%s %s not found", what, id)
}

func (s *Service) User(ctx context.Context, c Caller, id uuid.UUID) (*User, error) {
	if !c.CanAccess(id) {
		return nil, notFound("user", id)
	}
	u, err := s.store.User(ctx, id)
	if err == ErrNotFound {
		return nil, notFound("user", id)
	}
	return u, err
}

func (s *Service) Users(ctx context.Context, c Caller, tag string, p ListParams) (Page[User], error) {
	if !c.Admin {
		return Page[User]{}, errForbidden
	}
	if tag != "" && !tagRE.MatchString(tag) {
		return Page[User]{}, Invalid(FieldError{Field: "tag", Message: "must be 1-64 letters, digits or _.:-"})
	}
	return s.store.Users(ctx, tag, p)
}

func (s *Service) UpdateUser(ctx context.Context, c Caller, id uuid.UUID, patch UserPatch) (*User, error) {
	if !c.CanAccess(id) {
		return nil, notFound("user", id)
	}
	var fields []FieldError
	if patch.Name != nil {
		if msg := validName(*patch.Name); msg != "" {
			fields = append(fields, FieldError{Field: "name", Message: msg})
		}
	}
	if patch.WebhookURL != nil && *patch.WebhookURL != nil {
		if msg := ValidateWebhookURL(**patch.WebhookURL, s.cfg.AllowPrivateWebhooks); msg != "" {
			fields = append(fields, FieldError{Field: "webhook_url", Message: msg})
		}
	}
	if len(fields) > 0 {
		return nil, Invalid(fields...)
	}
	u, err := s.store.UpdateUser(ctx, id, patch)
	if err == ErrNotFound {
		return nil, notFound("user", id)
	}
	return u, err
}

// --- transactions ---

// Transactions lists the transactions f selects, newest first. A user must name one of its
// accounts; the admin may list all. Errors: validation_failed (a user without account_id, to
// not after from), not_found (the account is not the caller's).
func (s *Service) Transactions(ctx context.Context, c Caller, f TxFilter, p ListParams) (Page[Transaction], error) {
	switch {
	case f.AccountID == uuid.Nil && !c.Admin:
		return Page[Transaction]{}, Invalid(FieldError{Field: "account_id", Message: "is required: name one of your accounts"})
	case !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From):
		return Page[Transaction]{}, Invalid(FieldError{Field: "to", Message: "must be after from"})
	}
	if f.AccountID != uuid.Nil {
		if _, err := s.Account(ctx, c, f.AccountID); err != nil {
			return Page[Transaction]{}, err
		}
	}
	return s.store.Transactions(ctx, f, p)
}

// Validate checks a request's shape and who may make it; failures are never stored against an
// idempotency key, so the caller may correct and retry.
func (r TxRequest) Validate(c Caller) error {
	var fields []FieldError
	switch r.Type {
	case Deposit:
		if r.To == uuid.Nil {
			fields = append(fields, FieldError{Field: "to_account_id", Message: "is required for a deposit"})
		}
		if r.From != uuid.Nil {
			fields = append(fields, FieldError{Field: "from_account_id", Message: "must be absent for a deposit"})
		}
	case Withdrawal:
		if r.From == uuid.Nil {
			fields = append(fields, FieldError{Field: "from_account_id", Message: "is required for a withdrawal"})
		}
		if r.To != uuid.Nil {
			fields = append(fields, FieldError{Field: "to_account_id", Message: "must be absent for a withdrawal"})
		}
	case Transfer:
		if r.From == uuid.Nil {
			fields = append(fields, FieldError{Field: "from_account_id", Message: "is required for a transfer"})
		}
		if r.To == uuid.Nil {
			fields = append(fields, FieldError{Field: "to_account_id", Message: "is required for a transfer"})
		}
	default:
		fields = append(fields, FieldError{Field: "type", Message: `must be "deposit", "withdrawal" or "transfer"`})
	}
	fields = append(fields, r.amountErrors()...)
	if len(fields) > 0 {
		return Invalid(fields...)
	}
	if r.Type == Deposit && !c.Admin {
		return errForbidden
	}
	return nil
}

// amountErrors checks what every request that moves or reserves money carries: its amount,
// currency, description and metadata.
func (r TxRequest) amountErrors() []FieldError {
	var fields []FieldError
	if r.Amount < 1 || r.Amount > MaxAmount {
		fields = append(fields, FieldError{Field: "amount", Message: "must be an integer from 1 to 1000000000000"})
	}
	if !ValidCurrency(r.Currency) {
		fields = append(fields, FieldError{Field: "currency", Message: "must be an ISO 4217 currency code"})
	}
	return append(fields, annotationErrors(r.Description, r.Metadata)...)
}

// annotationErrors checks what a client attaches to a transaction: its description and metadata.
func annotationErrors(description string, meta Metadata) []FieldError {
	var fields []FieldError
	if utf8.RuneCountInString(description) > 500 {
		fields = append(fields, FieldError{Field: "description", Message: "must be at most 500 characters"})
	} else if msg := storableText(description); msg != "" {
		fields = append(fields, FieldError{Field: "description", Message: msg})
	}
	return append(fields, meta.check()...)
}

// ValidateKey checks an Idempotency-Key.
func ValidateKey(key string) error {
	if len(key) > 255 {
		return Invalid(FieldError{Field: "Idempotency-Key", Message: "must be 1-255 characters"})
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return Invalid(FieldError{Field: "Idempotency-Key", Message: "must be printable ASCII without spaces"})
		}
	}
	return nil
}

// ReverseInput is a reversal request: Amount 0 reverses all that is not reversed yet.
type ReverseInput struct {
	Amount      int64
	Description string
	Metadata    Metadata
}

// Reverse moves (part of) transaction id's amount back the way it came, through group commit,
// deciding against the locked accounts how much is left to reverse. Admin only. Errors:
// forbidden, validation_failed, not_found, conflict (a reversal cannot itself be reversed),
// and, as the request's result, amount_exceeds_original or insufficient_funds.
func (s *Service) Reverse(ctx context.Context, c Caller, id uuid.UUID, in ReverseInput, key, requestID string) (*Pending, error) {
	if !c.Admin {
		return nil, errForbidden
	}
	var fields []FieldError
	if in.Amount < 0 || in.Amount > MaxAmount {
		fields = append(fields, FieldError{Field: "amount", Message: "must be an integer from 1 to 1000000000000"})
	}
	fields = append(fields, annotationErrors(in.Description, in.Metadata)...)
	if len(fields) > 0 {
		return nil, Invalid(fields...)
	}
	orig, _, err := s.store.Transaction(ctx, id)
	if err == ErrNotFound {
		return nil, notFound("transaction", id)
	} else if err != nil {
		return nil, err
	}
	if orig.Type == Reversal {
		return nil, Errorf(CodeConflict, "transaction %s is a reversal: it cannot be reversed", id)
	}
	req := TxRequest{Type: Reversal, Reverses: id, Amount: in.Amount, Currency: orig.Currency,
		Description: in.Description, Metadata: in.Metadata}
	if orig.ToAccountID != nil {
		req.From = *orig.ToAccountID
	}
	if orig.FromAccountID != nil {
		req.To = *orig.FromAccountID
	}
	p := &Pending{Caller: c, Req: req, Key: key, RequestID: requestID}
	if err := s.batcher.Submit(ctx, []*Pending{p}); err != nil {
		return nil, err
	}
	return p, nil
}

// Execute applies validated requests through group commit and returns their results in order.
// An error means none of them was applied.
func (s *Service) Execute(ctx context.Context, items []*Pending) error {
	return s.batcher.Submit(ctx, items)
}

func (s *Service) Transaction(ctx context.Context, c Caller, id uuid.UUID) (*Transaction, error) {
	tx, owners, err := s.store.Transaction(ctx, id)
	if err == ErrNotFound {
		return nil, notFound("transaction", id)
	} else if err != nil {
		return nil, err
	}
	if c.Admin {
		return tx, nil
	}
	for _, o := range owners {
		if o == c.UserID {
			return tx, nil
		}
	}
	return nil, notFound("transaction", id)
}

// --- admin ---

func (s *Service) Reconcile(ctx context.Context, c Caller) (map[string]CurrencyBalance, error) {
	if !c.Admin {
		return nil, errForbidden
	}
	return s.store.Reconcile(ctx)
}

func (s *Service) Purge(ctx context.Context, c Caller, tag string) (PurgeResult, error) {
	if !c.Admin {
		return PurgeResult{}, errForbidden
	}
	if !tagRE.MatchString(tag) {
		return PurgeResult{}, Invalid(FieldError{Field: "tag", Message: "must be 1-64 letters, digits or _.:-"})
	}
	res, hashes, err := s.store.Purge(ctx, tag)
	if err != nil {
		return res, err
	}
	// The keys are gone from the store; forget them everywhere they may be cached.
	s.local.clear()
	if c := s.cfg.KeyCache; c != nil && len(hashes) > 0 {
		if err := c.Delete(ctx, hashes); err != nil {
			s.cacheError("delete", err)
		}
	}
	return res, nil
}
