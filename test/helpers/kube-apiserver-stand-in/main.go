// A kube-apiserver stand-in for the test suite: the JWT authenticator of
// kube-apiserver, built on the same verifier (github.com/coreos/go-oidc), and
// the one API kubectl auth whoami calls (SelfSubjectReview). It reads the
// AuthenticationConfiguration that `jenkins-oidc kubernetes setup --json`
// prints and decides as Kubernetes documents it. Sources:
// https://kubernetes.io/docs/reference/access-authn-authz/authentication/#openid-connect-tokens
// (the --oidc-* flags and the structured AuthenticationConfiguration), and
// kube-apiserver's plugin/pkg/authenticator/token/oidc/oidc.go.
//
// 1. configuration: issuer.url https, no query, fragment or user info;
//    audiences not empty (one, as the flag form's --oidc-client-id);
//    claimMappings.username.claim with prefix set (structured config requires
//    the prefix whenever a claim is named); claimValidationRules with claim
//    and requiredValue (expressions are not supported here).
// 2. discovery from <issuer.url>/.well-known/openid-configuration, whose
//    issuer must equal the URL (go-oidc NewProvider), keys from its jwks_uri.
// 3. go-oidc Verify: signature, iss exact, aud contains the audience, exp;
//    signing algorithms RS256 only: kube-apiserver's default
//    (--oidc-signing-algs "Default is RS256"; structured config verifies the
//    same way).
// 4. the username claim must be present and a string; the username is
//    prefix + value.
// 5. each claimValidationRule: the claim must be present and a string equal
//    to requiredValue (--oidc-required-claim "Multiple ... The claim value
//    must be a string").
// A refused token is answered 401 Unauthorized as kube-apiserver does, and
// the reason is written to stderr ("refused: ...") for the test to read.
//
// Test-only: POST /stand-in/clock?offset=SECONDS moves the verifier's clock.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	oidc "github.com/coreos/go-oidc"
)

type authConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	JWT        []struct {
		Issuer struct {
			URL       string   `json:"url"`
			Audiences []string `json:"audiences"`
		} `json:"issuer"`
		ClaimValidationRules []struct {
			Claim         string `json:"claim"`
			RequiredValue string `json:"requiredValue"`
			Expression    string `json:"expression"`
		} `json:"claimValidationRules"`
		ClaimMappings struct {
			Username struct {
				Claim      string  `json:"claim"`
				Prefix     *string `json:"prefix"`
				Expression string  `json:"expression"`
			} `json:"username"`
		} `json:"claimMappings"`
	} `json:"jwt"`
}

var offset int64

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "configuration refused: "+format+"\n", args...)
	os.Exit(2)
}

func status(w http.ResponseWriter, code int, reason, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]interface{}{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]interface{}{},
		"status": "Failure", "message": message, "reason": reason, "code": code,
	})
}

func main() {
	configFile := flag.String("config", "", "AuthenticationConfiguration (JSON)")
	certFile := flag.String("cert", "", "serving certificate chain (PEM)")
	keyFile := flag.String("key", "", "serving key (PEM)")
	issuerCA := flag.String("issuer-ca", "", "CA to trust when fetching the issuer's discovery and keys (PEM)")
	flag.Parse()

	raw, err := ioutil.ReadFile(*configFile)
	if err != nil {
		fail("%v", err)
	}
	var cfg authConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		fail("not JSON: %v", err)
	}
	if cfg.Kind != "AuthenticationConfiguration" || !strings.HasPrefix(cfg.APIVersion, "apiserver.config.k8s.io/") {
		fail("kind %q apiVersion %q", cfg.Kind, cfg.APIVersion)
	}
	if len(cfg.JWT) != 1 {
		fail("this stand-in takes exactly one jwt authenticator, got %d", len(cfg.JWT))
	}
	j := cfg.JWT[0]
	u, err := url.Parse(j.Issuer.URL)
	if err != nil || u.Scheme != "https" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		fail("issuer.url must be an https URL without query, fragment or user info: %q", j.Issuer.URL)
	}
	if len(j.Issuer.Audiences) != 1 {
		fail("issuer.audiences: exactly one audience here, got %d", len(j.Issuer.Audiences))
	}
	if j.ClaimMappings.Username.Claim == "" || j.ClaimMappings.Username.Expression != "" {
		fail("claimMappings.username.claim is required here (expressions are not supported)")
	}
	if j.ClaimMappings.Username.Prefix == nil {
		fail("claimMappings.username.prefix is required when claim is set")
	}
	for _, r := range j.ClaimValidationRules {
		if r.Expression != "" || r.Claim == "" {
			fail("claimValidationRules: claim and requiredValue only here")
		}
	}

	pool := x509.NewCertPool()
	pem, err := ioutil.ReadFile(*issuerCA)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		fail("issuer CA: %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx := oidc.ClientContext(context.Background(), client)
	provider, err := oidc.NewProvider(ctx, j.Issuer.URL)
	if err != nil {
		fail("discovery: %v", err)
	}
	verifier := provider.Verifier(&oidc.Config{
		ClientID:             j.Issuer.Audiences[0],
		SupportedSigningAlgs: []string{oidc.RS256},
		Now:                  func() time.Time { return time.Now().Add(time.Duration(atomic.LoadInt64(&offset)) * time.Second) },
	})

	authenticate := func(r *http.Request) (string, error) {
		h := r.Header.Get("Authorization")
		if !strings.HasPrefix(h, "Bearer ") {
			return "", fmt.Errorf("no bearer token")
		}
		token, err := verifier.Verify(ctx, strings.TrimPrefix(h, "Bearer "))
		if err != nil {
			return "", err
		}
		var claims map[string]interface{}
		if err := token.Claims(&claims); err != nil {
			return "", err
		}
		name, ok := claims[j.ClaimMappings.Username.Claim].(string)
		if !ok || name == "" {
			return "", fmt.Errorf("oidc: parse username claims %q: claim not present or not a string", j.ClaimMappings.Username.Claim)
		}
		for _, rule := range j.ClaimValidationRules {
			v, present := claims[rule.Claim]
			if !present {
				return "", fmt.Errorf("oidc: required claim %s not present in ID token", rule.Claim)
			}
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("oidc: parse claim %s: json: cannot unmarshal %T into Go value of type string", rule.Claim, v)
			}
			if s != rule.RequiredValue {
				return "", fmt.Errorf("oidc: required claim %s value does not match. Got = %s, want = %s", rule.Claim, s, rule.RequiredValue)
			}
		}
		return *j.ClaimMappings.Username.Prefix + name, nil
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/stand-in/clock", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
		if r.Method != http.MethodPost || err != nil {
			http.Error(w, "POST ?offset=SECONDS", http.StatusBadRequest)
			return
		}
		atomic.StoreInt64(&offset, n)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/apis/authentication.k8s.io/v1/selfsubjectreviews", func(w http.ResponseWriter, r *http.Request) {
		user, err := authenticate(r)
		if err != nil {
			fmt.Fprintf(os.Stderr, "refused: %v\n", err)
			status(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
			return
		}
		if r.Method != http.MethodPost {
			status(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the server does not allow this method on the requested resource")
			return
		}
		fmt.Fprintf(os.Stderr, "authenticated: %s\n", user)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]interface{}{
			"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
			"metadata": map[string]interface{}{"creationTimestamp": nil},
			"status": map[string]interface{}{"userInfo": map[string]interface{}{"username": user, "groups": []string{"system:authenticated"}}},
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := authenticate(r); err != nil {
			fmt.Fprintf(os.Stderr, "refused: %v\n", err)
			status(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
			return
		}
		status(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	})

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail("serving certificate: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	fmt.Printf("listening https://%s\n", ln.Addr().String())
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	if err := srv.ServeTLS(ln, "", ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
