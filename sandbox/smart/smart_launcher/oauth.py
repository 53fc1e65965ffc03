"""The authorization server: authlib's grants, made to speak SMART App Launch 2.x.

authlib supplies the OAuth 2 machinery; the subclasses below add what SMART asks and authlib
does not do by default (see the comments at each): S256-only PKCE at /authorize, `aud` = the FHIR
base, the `launch` parameter, launch context in the token response, refresh only with
offline_access/online_access, and private_key_jwt with RS384/ES384, a 5-minute `exp` ceiling,
`jti` replay refusal and keys by value or by URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from .config import SUPPORTED_ALGS, ClientSpec, LauncherConfig
from .keys import Key
from .scopes import ScopeSet, grantable_scope, split_scope
from .store import (
    CODE_LIFETIME,
    AuthorizationCode,
    Launch,
    SandboxUser,
    Store,
    TokenRecord,
    refresh_lifetime,
)

log = logging.getLogger("smart_launcher.oauth")
MAX_ASSERTION_LIFETIME = 300
CLOCK_SKEW = 5


class Client(ClientMixin):
    """A registered client (ClientSpec) seen through authlib's ClientMixin."""

    def __init__(self, spec: ClientSpec) -> None:
        self.spec = spec
        self.client_id = spec.client_id

    def get_client_id(self) -> str:
        return self.spec.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.spec.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return grantable_scope(scope, self.spec.scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.spec.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # no shared secrets in this sandbox: public or asymmetric clients only

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.spec.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.spec.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.spec.grant_types


class StoredRequest(OAuth2Request):
    """An authorization request replayed from the consent page's pending record."""

    def __init__(self, params: dict[str, str], uri: str) -> None:
        super().__init__("GET", uri, headers={})
        self.payload = BasicOAuth2Payload(params)
        self._params = params

    @property
    def args(self) -> dict[str, str]:
        return self._params

    @property
    def form(self) -> dict[str, str]:
        return {}


class SmartServer(AuthorizationServer):
    """authlib's Flask server that also accepts a StoredRequest in place of the Flask request."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)


class SmartCodeChallenge(CodeChallenge):
    """PKCE with S256 only. authlib's CodeChallenge(required=True) still issues a code for a request
    without a challenge or with `plain`; SMART 2.x servers SHALL NOT support plain."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 (authlib's class attribute)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "PKCE with code_challenge_method=S256 is required", redirect_uri=redirect_uri
            )
        super().validate_code_challenge(grant, redirect_uri)


class SmartOpenIDCode(OpenIDCode):
    """id_token (RS256, signed with the launcher's key) with the SMART `fhirUser` claim."""

    def __init__(self, smart: Smart) -> None:
        super().__init__(require_nonce=False)
        self.smart = smart

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.smart.store.nonce_seen(request.payload.client_id or "", nonce)

    def resolve_client_private_key(self, client: Client) -> Key:
        return self.smart.id_token_key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict:
        return {"alg": "RS256", "kid": self.smart.id_token_key.thumbprint()}

    def get_client_claims(self, client: Client) -> dict:
        now = int(time.time())
        return {"iss": self.smart.config.origin, "aud": [client.get_client_id()], "exp": now + 3600}

    def generate_user_info(self, user: SandboxUser, scope: str) -> dict:
        info = {"sub": user.practitioner, "fhirUser": user.fhir_user}
        if "profile" in split_scope(scope):
            info["name"] = self.smart.config.practitioner_name
        return info


class SmartAuthorizationCodeGrant(AuthorizationCodeGrant):
    """Authorization code grant with the SMART checks at /authorize and the launch context kept
    with the code. Public clients authenticate with `none`, confidential ones with
    private_key_jwt."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt", "none"]  # noqa: RUF012
    smart: Smart  # set by Smart.__init__ on the subclass it registers

    def validate_authorization_request(self) -> str:
        redirect_uri = super().validate_authorization_request()
        data = self.request.payload.data
        state = self.request.payload.state
        base = self.smart.config.fhir_base
        if str(data.get("aud", "")).rstrip("/") != base:
            raise InvalidRequestError(
                f"'aud' must be the FHIR base URL {base}", redirect_uri=redirect_uri, state=state
            )
        launch_id = data.get("launch")
        if launch_id:
            launch = self.smart.store.get_launch(launch_id)
            if launch is None:
                raise InvalidRequestError(
                    "Unknown or expired 'launch'", redirect_uri=redirect_uri, state=state
                )
            if launch.client_id and launch.client_id != self.request.client.get_client_id():
                raise InvalidRequestError(
                    "This 'launch' was issued for another app",
                    redirect_uri=redirect_uri,
                    state=state,
                )
        elif "launch" in split_scope(data.get("scope")):
            raise InvalidRequestError(
                "Scope 'launch' needs the 'launch' parameter of an EHR launch",
                redirect_uri=redirect_uri,
                state=state,
            )
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        if data.get("nonce"):
            self.smart.store.record_nonce(request.client.get_client_id(), data["nonce"])
        self.smart.store.save_code(
            AuthorizationCode(
                code=code,
                client_id=request.client.get_client_id(),
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope or "",
                user=request.user,
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                nonce=data.get("nonce"),
                auth_time=int(time.time()),
                expires_at=time.time() + CODE_LIFETIME,
            )
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        return self.smart.store.take_code(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing left to do: take_code already removed it."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> SandboxUser:
        return authorization_code.user


class SmartRefreshTokenGrant(RefreshTokenGrant):
    """Refresh with rotation: each refresh returns a new refresh token and retires the old one."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt", "none"]  # noqa: RUF012
    INCLUDE_NEW_REFRESH_TOKEN = True
    smart: Smart

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        return self.smart.store.get_refresh(refresh_token)

    def authenticate_user(self, refresh_token: TokenRecord) -> SandboxUser | None:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        self.smart.store.revoke_refresh(refresh_token)


class SmartClientCredentialsGrant(ClientCredentialsGrant):
    """Backend Services: private_key_jwt only, and the granted scope cut down to the registration
    (authlib 1.9 would otherwise issue the requested scope verbatim)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]  # noqa: RUF012

    def create_token_response(self) -> tuple[int, dict, list]:
        allowed = self.client.get_allowed_scope(self.request.payload.scope)
        scope = " ".join(s for s in split_scope(allowed) if s.startswith("system/"))
        if not scope:
            raise InvalidScopeError(
                "None of the requested system/ scopes is allowed for this client."
            )
        token = self.generate_token(scope=scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class SmartClientAssertion(JWTBearerClientAssertion):
    """private_key_jwt as SMART's client-confidential-asymmetric profile wants it.

    authlib's stock class decodes without `algorithms`, which refuses RS384/ES384 ("not
    recommended"); it also accepts any `exp`. Here: RS384/ES384 only, aud = token URL,
    exp at most 5 minutes ahead, jti once, `kid` must name a registered key.
    """

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, smart: Smart) -> None:
        super().__init__(validate_jti=True, leeway=CLOCK_SKEW)
        self.smart = smart

    def get_audiences(self) -> list[str]:
        return [self.smart.config.token_url]

    def resolve_client_public_key(self, client: Client) -> KeySet:
        spec = client.spec
        if spec.jwks is not None:
            return KeySet.import_key_set(spec.jwks)
        if spec.jwks_uri:
            try:
                response = self.smart.http.get(spec.jwks_uri, timeout=5)
                response.raise_for_status()
                return KeySet.import_key_set(response.json())
            except (requests.RequestException, ValueError) as exc:
                raise InvalidClientError(
                    description="The client's JWKS URL could not be read."
                ) from exc
        raise InvalidClientError(description="No public key is registered for this client.")

    def process_assertion_claims(self, assertion: str, key: KeySet) -> dict:
        try:
            token = jwt.decode(assertion, _key_selector(key), algorithms=list(SUPPORTED_ALGS))
        except (JoseError, ValueError) as exc:
            reason = getattr(exc, "description", None) or str(exc) or "Invalid client assertion."
            raise InvalidClientError(description=reason) from exc
        jku = token.header.get("jku")
        client = self.smart.clients.get(str(token.claims.get("sub")))
        if jku and (client is None or jku != client.spec.jwks_uri):
            raise InvalidClientError(description="'jku' is not the client's registered JWKS URL.")
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: jwt.Claims) -> None:
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp > time.time() + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
            raise InvalidClientError(
                description="client_assertion exp must be at most 5 minutes ahead."
            )
        super().verify_claims(claims)

    def validate_jti(self, claims: jwt.Claims, jti: str) -> bool:
        return self.smart.store.use_jti(str(claims["sub"]), str(jti), claims.get("exp", 0))


def _key_selector(keys: KeySet) -> Callable[[Any], Key]:
    """Pick the verification key: by `kid` when the assertion has one (unknown kid -> refused),
    else the only registered key of the right type."""

    def select(obj: Any) -> Key:
        header = obj.headers()
        kid, alg = header.get("kid"), str(header.get("alg", ""))
        if kid:
            for key in keys.keys:
                if (key.kid or key.thumbprint()) == kid:
                    return key
            raise ValueError("The assertion's key (kid) is not registered for this client.")
        kind = RSAKey if alg.startswith("RS") else ECKey
        candidates = [key for key in keys.keys if isinstance(key, kind)]
        if len(candidates) != 1:
            raise ValueError("The assertion has no kid and no single registered key matches it.")
        return candidates[0]

    return select


class Smart:
    """The authorization server with its configuration, state and HTTP session."""

    def __init__(
        self, config: LauncherConfig, store: Store, id_token_key: Key, http: requests.Session
    ):
        self.config = config
        self.store = store
        self.id_token_key = id_token_key
        self.http = http
        self.clients = {cid: Client(spec) for cid, spec in config.clients.items()}
        self.server = SmartServer(query_client=self.clients.get, save_token=self.save_token)
        self.server.register_token_generator("default", self.generate_token)
        code_grant = type("CodeGrant", (SmartAuthorizationCodeGrant,), {"smart": self})
        refresh_grant = type("RefreshGrant", (SmartRefreshTokenGrant,), {"smart": self})
        self.server.register_grant(
            code_grant, [SmartCodeChallenge(required=True), SmartOpenIDCode(self)]
        )
        self.server.register_grant(refresh_grant)
        self.server.register_grant(SmartClientCredentialsGrant)
        self.server.register_client_auth_method("private_key_jwt", SmartClientAssertion(self))

    def user_for(self, launch: Launch | None) -> SandboxUser:
        """The sandbox user signed in for this request, with the launch's context if any."""
        practitioner = launch.practitioner if launch else self.config.practitioner
        return SandboxUser(
            practitioner=practitioner,
            fhir_user=f"{self.config.fhir_base}/Practitioner/{practitioner}",
            patient=launch.patient if launch else None,
            encounter=launch.encounter if launch else None,
            need_patient_banner=launch.need_patient_banner if launch else True,
        )

    def generate_token(
        self,
        grant_type: str,
        client: Client,
        user: SandboxUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict:
        """Bearer token; a refresh token only for offline_access/online_access; launch context."""
        backend = grant_type == "client_credentials"
        lifetime = (
            self.config.backend_token_lifetime if backend else self.config.access_token_lifetime
        )
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": generate_token(42),
            "expires_in": expires_in or lifetime,
            "scope": scope or "",
        }
        scopes = split_scope(scope)
        if include_refresh_token and ({"offline_access", "online_access"} & set(scopes)):
            token["refresh_token"] = generate_token(48)
        if user is not None:
            token.update(user.launch_context())
        return token

    def save_token(self, token: dict, request: OAuth2Request) -> None:
        scope = token.get("scope", "")
        refresh = token.get("refresh_token")
        record = TokenRecord(
            access_token=token["access_token"],
            client_id=request.client.get_client_id(),
            scope=scope,
            user=request.user,
            expires_at=time.time() + int(token["expires_in"]),
            refresh_token=refresh,
            refresh_expires_at=time.time() + refresh_lifetime(scope) if refresh else 0.0,
            scopes=ScopeSet.parse(scope),
        )
        code = request.authorization_code.code if request.authorization_code else None
        self.store.save_token(record, code)
        log.info("token issued client=%s grant=%s", record.client_id, request.payload.grant_type)
