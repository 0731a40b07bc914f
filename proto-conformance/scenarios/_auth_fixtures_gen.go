// Generator of the JWT/NKey fixtures of the auth_* conformance scenarios, minted with the Go
// libraries nats-server itself uses (github.com/nats-io/jwt/v2 v2.8.2, nkeys v0.4.16), so both
// servers are judged on credentials neither of them produced.
//
// Run from a scratch Go module that requires both libraries (they are in the Go proxy):
//
//	mkdir /tmp/authgen && cp _auth_fixtures_gen.go /tmp/authgen/main.go && cd /tmp/authgen
//	go mod init authgen && go get github.com/nats-io/jwt/v2@v2.8.2 github.com/nats-io/nkeys@v0.4.16
//	go run . <path of proto-conformance/scenarios>
//
// It rewrites every file listed in `writes` below. The JWTs carry no expiry (except the one
// that must be expired), revocations are dated 2099, so the files stay valid when committed.
//
// Trust layout (operator mode, resolver MEMORY with resolver_preload):
//
//	operator OP (signing key opSk)
//	  account TENANT (issued by opSk): plain signing key aSk, scoped signing key aScoped with
//	          the ChoirOS template (pub/sub only on choiros.user.{{name()}}.>, replies allowed),
//	          revocation of the user "revoked"
//	    users alice, bob (scoped), admin (account key, no limits), agent (aSk, own permissions),
//	          bearer (bearer token), expired, notyet, revoked, foreign (claims TENANT but
//	          signed by a key TENANT does not list), tampered (alice's JWT with the name changed
//	          after signing), scopedlimits (scoped key but permissions of its own)
//	  account OTHER (issued by OP): user carol
//	  account GHOST (not preloaded): user ghost
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type user struct {
	jwt, seed, pub string
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run . <proto-conformance/scenarios>")
		os.Exit(2)
	}
	out := os.Args[1]

	op := must(nkeys.CreateOperator())
	opSk := must(nkeys.CreateOperator())
	opPub := must(op.PublicKey())
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "OP"
	oc.SigningKeys.Add(must(opSk.PublicKey()))
	opJwt := must(oc.Encode(op))

	tenant := must(nkeys.CreateAccount())
	aSk := must(nkeys.CreateAccount())
	aScoped := must(nkeys.CreateAccount())
	tenantPub := must(tenant.PublicKey())
	other := must(nkeys.CreateAccount())
	otherPub := must(other.PublicKey())
	ghost := must(nkeys.CreateAccount())
	stranger := must(nkeys.CreateAccount())

	mkUser := func(name string, signer nkeys.KeyPair, issuerAccount string, edit func(*jwt.UserClaims)) user {
		kp := must(nkeys.CreateUser())
		pub := must(kp.PublicKey())
		uc := jwt.NewUserClaims(pub)
		uc.Name = name
		uc.IssuerAccount = issuerAccount
		if edit != nil {
			edit(uc)
		}
		return user{jwt: must(uc.Encode(signer)), seed: string(must(kp.Seed())), pub: pub}
	}
	scoped := func(uc *jwt.UserClaims) { uc.SetScoped(true) }

	users := map[string]user{}
	users["alice"] = mkUser("alice", aScoped, tenantPub, scoped)
	users["bob"] = mkUser("bob", aScoped, tenantPub, scoped)
	users["admin"] = mkUser("admin", tenant, "", nil)
	users["agent"] = mkUser("agent", aSk, tenantPub, func(uc *jwt.UserClaims) {
		uc.Pub.Allow.Add("agents.>")
		uc.Pub.Deny.Add("agents.secret")
		uc.Sub.Allow.Add("agents.>", "_INBOX.>")
	})
	users["bearer"] = mkUser("bearer", tenant, "", func(uc *jwt.UserClaims) { uc.BearerToken = true })
	users["expired"] = mkUser("expired", tenant, "", func(uc *jwt.UserClaims) {
		uc.Expires = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	})
	users["notyet"] = mkUser("notyet", tenant, "", func(uc *jwt.UserClaims) {
		uc.NotBefore = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	})
	users["revoked"] = mkUser("revoked", tenant, "", nil)
	users["foreign"] = mkUser("foreign", stranger, tenantPub, nil)
	users["scopedlimits"] = mkUser("scopedlimits", aScoped, tenantPub, func(uc *jwt.UserClaims) {
		uc.Pub.Allow.Add(">")
	})
	users["carol"] = mkUser("carol", other, "", nil)
	users["ghost"] = mkUser("ghost", ghost, "", nil)

	// alice's JWT with the payload edited after signing: the signature no longer matches.
	a := users["alice"]
	parts := strings.Split(a.jwt, ".")
	payload := must(base64.RawURLEncoding.DecodeString(parts[1]))
	payload = []byte(strings.Replace(string(payload), `"name":"alice"`, `"name":"bob"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	users["tampered"] = user{jwt: strings.Join(parts, "."), seed: a.seed, pub: a.pub}

	ac := jwt.NewAccountClaims(tenantPub)
	ac.Name = "TENANT"
	ac.SigningKeys.Add(must(aSk.PublicKey()))
	sc := jwt.NewUserScope()
	sc.Key = must(aScoped.PublicKey())
	sc.Role = "choiros"
	sc.Template.Pub.Allow.Add("choiros.user.{{name()}}.>")
	sc.Template.Sub.Allow.Add("choiros.user.{{name()}}.>", "_INBOX.>")
	sc.Template.Resp = &jwt.ResponsePermission{MaxMsgs: 1, Expires: time.Minute}
	ac.SigningKeys.AddScopedSigner(sc)
	ac.Revocations = jwt.RevocationList{}
	ac.Revocations.Revoke(users["revoked"].pub, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	tenantJwt := must(ac.Encode(opSk))

	oac := jwt.NewAccountClaims(otherPub)
	oac.Name = "OTHER"
	otherJwt := must(oac.Encode(op))

	conf := fmt.Sprintf("# generated by _auth_fixtures_gen.go: operator mode, MEMORY resolver\n"+
		"operator: %s\nresolver: MEMORY\nresolver_preload: {\n  %s: %s\n  %s: %s\n}\n",
		opJwt, tenantPub, tenantJwt, otherPub, otherJwt)

	// Plain NKey users (no JWT) for the nkeyAuthenticator scenario.
	nk := must(nkeys.CreateUser())
	nkOther := must(nkeys.CreateUser())
	nkPub := must(nk.PublicKey())

	fixtures := map[string]any{
		"operator_conf": conf,
		"tenant":        tenantPub,
		"other":         otherPub,
		"nkey_pub":      nkPub,
		"nkey_seed":     string(must(nk.Seed())),
		"nkey_unknown":  string(must(nkOther.Seed())),
		// For scenarios that mint short-lived users themselves (JWT expiry while connected).
		"tenant_seed": string(must(tenant.Seed())),
	}
	creds := map[string]string{}
	jwts := map[string]string{}
	seeds := map[string]string{}
	for name, u := range users {
		creds[name] = formatCreds(u.jwt, u.seed)
		jwts[name] = u.jwt
		seeds[name] = u.seed
	}
	fixtures["creds"] = creds
	fixtures["jwt"] = jwts
	fixtures["seed"] = seeds
	js := must(json.MarshalIndent(fixtures, "", "  "))
	module := "// generated by _auth_fixtures_gen.go (../_auth_fixtures_gen.go): JWTs, seeds and creds of the\n" +
		"// auth_* scenarios, minted with nats-io/jwt v2. Not a scenario (leading underscore).\n" +
		"export const F = " + string(js) + ";\n"

	writes := map[string]string{
		"js/_auth_fixtures.mjs":      module,
		"browser/_auth_fixtures.mjs": module,
		"cli/auth_creds.conf":        conf,
		"js/auth_jwt.conf":           conf,
		"js/auth_jwt_expiry.conf":    conf,
		"browser/auth_ws_jwt.conf":   conf,
		"raw/auth_jwt_bearer.conf":   conf,
	}
	for name := range users {
		writes["cli/_auth/"+name+".creds"] = creds[name]
	}
	writes["js/auth_nkey.conf"] = "# generated by _auth_fixtures_gen.go: NKey users with permissions\n" +
		"authorization {\n  users: [\n" +
		"    { nkey: " + nkPub + ", permissions: { publish: { allow: [\"agents.>\"], deny: [\"agents.secret\"] }, subscribe: [\"agents.>\", \"_INBOX.>\"] } }\n" +
		"    { user: ops, password: ops }\n  ]\n}\n"
	writes["raw/auth_jwt_bearer.txt"] = rawBearer(users)
	writes["raw/auth_nkey.txt"] = rawNkey(nkPub)
	for path, body := range writes {
		p := filepath.Join(out, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			panic(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			panic(err)
		}
	}
}

// A raw transcript needs no signature only for bearer users and for failures that happen
// before the signature check, so that is what it covers.
func rawBearer(u map[string]user) string {
	c := func(conn, name string) string {
		return fmt.Sprintf("@%s > CONNECT {\"verbose\":true,\"jwt\":\"%s\"}\n", conn, u[name].jwt)
	}
	return "# generated by _auth_fixtures_gen.go. Operator mode over the raw protocol: a bearer user JWT\n" +
		"# logs in without a signature; JWTs that are not bearer tokens, expired, not yet valid,\n" +
		"# tampered, signed by a key the account does not list, or of an account the resolver\n" +
		"# does not know are an Authorization Violation and close the connection.\n" +
		c("c1", "bearer") +
		"@c1 expect +OK\n" +
		"@c1 > SUB choiros.> 1\n" +
		"@c1 > PUB choiros.user.x 2\\r\\nhi\n" +
		"@c1 expect MSG choiros.user.x 1 2\n" +
		c("c2", "admin") + "@c2 expect -ERR 'Authorization Violation'\n@c2 expect closed\n" +
		c("c3", "expired") + "@c3 expect -ERR 'Authorization Violation'\n@c3 expect closed\n" +
		c("c4", "notyet") + "@c4 expect -ERR 'Authorization Violation'\n@c4 expect closed\n" +
		c("c5", "tampered") + "@c5 expect -ERR 'Authorization Violation'\n@c5 expect closed\n" +
		c("c6", "foreign") + "@c6 expect -ERR 'Authorization Violation'\n@c6 expect closed\n" +
		c("c7", "ghost") + "@c7 expect -ERR 'Authorization Violation'\n@c7 expect closed\n" +
		"@c8 > CONNECT {\"verbose\":true,\"user\":\"admin\",\"pass\":\"admin\"}\n" +
		"@c8 expect -ERR 'Authorization Violation'\n@c8 expect closed\n" +
		"@c9 > CONNECT {\"verbose\":true,\"jwt\":\"not.a.jwt\"}\n" +
		"@c9 expect -ERR 'Authorization Violation'\n@c9 expect closed\n" +
		"@c1 > PING\n@c1 expect PONG\n"
}

// NKey users without JWTs: every failure that needs no valid signature.
func rawNkey(pub string) string {
	return "# generated by _auth_fixtures_gen.go. NKey users: INFO carries a nonce; an unknown nkey, a\n" +
		"# missing or garbage signature are an Authorization Violation and close the connection.\n" +
		"config: authorization { users: [ { nkey: " + pub + " }, { user: pw, password: pw } ] }\n" +
		"@c1 connect\n" +
		"@c1 expect /\"nonce\":/\n" +
		"@c1 > CONNECT {\"verbose\":true,\"nkey\":\"" + pub + "\"}\n" +
		"@c1 expect -ERR 'Authorization Violation'\n@c1 expect closed\n" +
		"@c2 > CONNECT {\"verbose\":true,\"nkey\":\"" + pub + "\",\"sig\":\"AAAA\"}\n" +
		"@c2 expect -ERR 'Authorization Violation'\n@c2 expect closed\n" +
		"@c3 > CONNECT {\"verbose\":true,\"nkey\":\"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4\",\"sig\":\"AAAA\"}\n" +
		"@c3 expect -ERR 'Authorization Violation'\n@c3 expect closed\n" +
		"@c4 > CONNECT {\"verbose\":true,\"nkey\":\"not-a-key\",\"sig\":\"AAAA\"}\n" +
		"@c4 expect -ERR 'Authorization Violation'\n@c4 expect closed\n" +
		"@c5 > CONNECT {\"verbose\":true,\"user\":\"pw\",\"pass\":\"pw\"}\n" +
		"@c5 expect +OK\n" +
		"@c6 > CONNECT {\"verbose\":true,\"nkey\":\"" + pub + "\",\"sig\":\"!!!not base64!!!\"}\n" +
		"@c6 expect -ERR 'Authorization Violation'\n@c6 expect closed\n"
}

// The layout of jwt.FormatUserConfig, which refuses a JWT whose signature fails (the tampered one).
func formatCreds(userJwt, seed string) string {
	return "-----BEGIN NATS USER JWT-----\n" + userJwt + "\n------END NATS USER JWT------\n\n" +
		"************************* IMPORTANT *************************\n" +
		"NKEY Seed printed below can be used to sign and prove identity.\n" +
		"NKEYs are sensitive and should be treated as secrets.\n\n" +
		"-----BEGIN USER NKEY SEED-----\n" + seed + "\n------END USER NKEY SEED------\n\n" +
		"*************************************************************\n"
}
