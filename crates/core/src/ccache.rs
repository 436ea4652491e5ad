//! MIT credential caches (the `FILE:` format, version 4): read one, and
//! write one that holds a single ticket.
//!
//! Why: what GSSAPI exports for a constrained-delegation credential
//! (`gss_store_cred_into` after S4U2Self/S4U2Proxy) is the whole cache —
//! the evidence ticket, every ticket obtained with it, and sessiond's own
//! TGT. A back end must get the one ticket it asked for and nothing else
//! (decision 0023), and GSSAPI has no call that exports one ticket. The
//! crates that read this format (`kerberos_ccache`, `ccache-io`) are young
//! or unmaintained and do more than this needs; the format is small and
//! documented (MIT krb5, "ccache file format"), so it is read here.
//!
//! Layout (integers big-endian): `05 04`, a header (`u16` length, tagged
//! fields), the default principal, then credentials until the end. A
//! principal is `u32` name type, `u32` component count, the realm and the
//! components as counted strings (`u32` length). A credential is client,
//! server, key (`u16` type, counted data), four `u32` times, a `u8`
//! is-session-key flag, `u32` ticket flags, counted lists of addresses and
//! authorisation data (each `u16` type and counted data), the ticket and the
//! second ticket (counted).

/// What is wrong with a cache.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CcacheError {
    /// Not a version 4 file cache (the only version MIT writes since 1.4).
    #[error("not an MIT file credential cache of version 4")]
    Version,
    /// A length runs past the end, or a count is larger than the bytes left.
    #[error("the credential cache is truncated or malformed")]
    Truncated,
}

/// A Kerberos principal as a cache stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name_type: u32,
    pub realm: Vec<u8>,
    pub components: Vec<Vec<u8>>,
}

impl Principal {
    /// `HTTP/backend.example@EXAMPLE.COM` (no escaping: names with `/` or
    /// `@` inside a component are not told apart, and need not be here).
    pub fn parse(text: &str) -> Principal {
        let (name, realm) = text.rsplit_once('@').unwrap_or((text, ""));
        Principal {
            // KRB5_NT_PRINCIPAL
            name_type: 1,
            realm: realm.as_bytes().to_vec(),
            components: name.split('/').map(|c| c.as_bytes().to_vec()).collect(),
        }
    }

    /// Whether this is a cache's configuration entry (`X-CACHECONF:`), not
    /// a ticket.
    fn is_config(&self) -> bool {
        self.realm == b"X-CACHECONF:"
    }

    /// The same name, realms compared unless `self` has none: MIT files a
    /// ticket obtained through a referral under the empty realm. Such an
    /// entry is taken to be for the realm asked about, which holds for the
    /// caches this is used on: made afresh for one request to one service.
    fn names(&self, other: &Principal) -> bool {
        self.components == other.components && (self.realm.is_empty() || self.realm == other.realm)
    }
}

/// One credential: who, for which service, and the rest as it was read.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub client: Principal,
    pub server: Principal,
    /// Key, times, flags, addresses, authorisation data and tickets,
    /// byte for byte.
    rest: Vec<u8>,
}

/// Without the key and the ticket: a `Debug` print must never show a
/// session key.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("client", &self.client)
            .field("server", &self.server)
            .field(
                "rest",
                &format_args!("<{} bytes redacted>", self.rest.len()),
            )
            .finish()
    }
}

impl Credential {
    /// The ticket (for a configuration entry, its value).
    fn ticket(&self) -> Option<&[u8]> {
        let mut r = Reader(&self.rest);
        r.u16().ok()?;
        r.counted().ok()?;
        r.take(4 * 4 + 1 + 4).ok()?;
        r.typed_list().ok()?;
        r.typed_list().ok()?;
        r.counted().ok()
    }

    fn is_tgt(&self) -> bool {
        !self.server.is_config()
            && self.server.components.first().map(Vec::as_slice) == Some(b"krbtgt".as_slice())
    }

    /// When the ticket ends (seconds since the epoch, as the cache stores
    /// it: after the key come authtime, starttime, endtime, renew-till).
    pub fn end_time(&self) -> Option<u32> {
        let mut r = Reader(&self.rest);
        r.u16().ok()?;
        r.counted().ok()?;
        r.take(8).ok()?;
        r.u32().ok()
    }
}

/// A whole cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ccache {
    /// The header's tagged fields (a KDC time offset, usually none).
    header: Vec<u8>,
    pub default: Principal,
    pub credentials: Vec<Credential>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CcacheError> {
        if self.0.len() < n {
            return Err(CcacheError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, CcacheError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, CcacheError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn counted(&mut self) -> Result<&'a [u8], CcacheError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn principal(&mut self) -> Result<Principal, CcacheError> {
        let name_type = self.u32()?;
        let count = self.u32()? as usize;
        // each component takes at least its 4-byte length
        if count > self.0.len() / 4 {
            return Err(CcacheError::Truncated);
        }
        let realm = self.counted()?.to_vec();
        let components = (0..count)
            .map(|_| self.counted().map(<[u8]>::to_vec))
            .collect::<Result<_, _>>()?;
        Ok(Principal {
            name_type,
            realm,
            components,
        })
    }
    /// Skips a counted list of (`u16` type, counted data).
    fn typed_list(&mut self) -> Result<(), CcacheError> {
        let count = self.u32()?;
        for _ in 0..count {
            self.u16()?;
            self.counted()?;
        }
        Ok(())
    }
}

fn put_counted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_principal(out: &mut Vec<u8>, p: &Principal) {
    out.extend_from_slice(&p.name_type.to_be_bytes());
    out.extend_from_slice(&(p.components.len() as u32).to_be_bytes());
    put_counted(out, &p.realm);
    for c in &p.components {
        put_counted(out, c);
    }
}

impl Ccache {
    /// Reads a version 4 file cache.
    pub fn parse(bytes: &[u8]) -> Result<Ccache, CcacheError> {
        let mut r = Reader(bytes);
        if r.take(2).map_err(|_| CcacheError::Version)? != [5, 4] {
            return Err(CcacheError::Version);
        }
        let header_len = r.u16()? as usize;
        let header = r.take(header_len)?.to_vec();
        let default = r.principal()?;
        let mut credentials = Vec::new();
        while !r.0.is_empty() {
            let client = r.principal()?;
            let server = r.principal()?;
            let start = r.0;
            r.u16()?; // key type
            r.counted()?; // key
            r.take(4 * 4 + 1 + 4)?; // times, is_skey, flags
            r.typed_list()?; // addresses
            r.typed_list()?; // authorisation data
            r.counted()?; // ticket
            r.counted()?; // second ticket
            let rest = start[..start.len() - r.0.len()].to_vec();
            credentials.push(Credential {
                client,
                server,
                rest,
            });
        }
        Ok(Ccache {
            header,
            default,
            credentials,
        })
    }

    /// The cache as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![5, 4];
        out.extend_from_slice(&(self.header.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.header);
        put_principal(&mut out, &self.default);
        for c in &self.credentials {
            put_principal(&mut out, &c.client);
            put_principal(&mut out, &c.server);
            out.extend_from_slice(&c.rest);
        }
        out
    }

    /// A cache holding only the ticket of `client` for `service` (named with
    /// its realm), whose default principal is `client`: what a back end
    /// may be given. No TGT, no evidence ticket, no other service's ticket,
    /// no configuration entry. `None` when the cache has no such ticket.
    pub fn only_ticket(&self, client: &Principal, service: &Principal) -> Option<Ccache> {
        self.only_tickets(client, std::slice::from_ref(service))
    }

    /// [`Ccache::only_ticket`] for several services: the tickets of
    /// `client` for each of `services` that the cache has, nothing else.
    /// `None` when it has none of them.
    /// Never a TGT, and never a ticket to the impersonating service (the
    /// S4U evidence), whatever is asked for.
    pub fn only_tickets(&self, client: &Principal, services: &[Principal]) -> Option<Ccache> {
        let impersonator = self.impersonator();
        let credentials: Vec<Credential> = services
            .iter()
            .filter_map(|service| {
                let found = self.credentials.iter().find(|c| {
                    !c.server.is_config()
                        && !c.is_tgt()
                        && impersonator
                            .as_ref()
                            .is_none_or(|i| !c.server.names(i) && !i.names(&c.server))
                        && c.client.realm == client.realm
                        && c.client.components == client.components
                        && c.server.names(service)
                })?;
                let mut one = found.clone();
                // filed under the referral (empty) realm: named with the
                // real one, which is what a client looking for the service
                // asks its cache for
                one.server.realm.clone_from(&service.realm);
                Some(one)
            })
            .collect();
        (!credentials.is_empty()).then(|| Ccache {
            header: self.header.clone(),
            default: client.clone(),
            credentials,
        })
    }

    /// Whether this is the user's own TGT, as a client forwards it or a
    /// password login gets it — the only cache that may be handed out
    /// whole: a TGT whose client is the default principal, every ticket
    /// that principal's, and no sign of S4U (an impersonator entry). An S4U
    /// export holds sessiond's TGT for sessiond, so it never qualifies.
    pub fn is_users_own_tgt(&self) -> bool {
        let own = |c: &Credential| {
            c.client.realm == self.default.realm && c.client.components == self.default.components
        };
        self.impersonator().is_none()
            && self.credentials.iter().any(|c| c.is_tgt() && own(c))
            && self
                .credentials
                .iter()
                .filter(|c| !c.server.is_config())
                .all(own)
    }

    /// The service that obtained these tickets by S4U, from MIT's
    /// `proxy_impersonator` configuration entry.
    fn impersonator(&self) -> Option<Principal> {
        self.credentials
            .iter()
            .find(|c| {
                c.server.is_config()
                    && c.server.components.get(1).map(Vec::as_slice)
                        == Some(b"proxy_impersonator".as_slice())
            })
            .and_then(Credential::ticket)
            .map(|name| Principal::parse(&String::from_utf8_lossy(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A credential with made-up key and tickets.
    fn credential(client: &str, server: &str, ticket: &[u8]) -> Credential {
        let mut rest = Vec::new();
        rest.extend_from_slice(&18u16.to_be_bytes());
        put_counted(&mut rest, &[7; 32]);
        // authtime, starttime, endtime, renew-till
        for t in [1_000u32, 1_000, 37_000, 0] {
            rest.extend_from_slice(&t.to_be_bytes());
        }
        rest.push(0);
        rest.extend_from_slice(&0x40e1_0000u32.to_be_bytes());
        rest.extend_from_slice(&0u32.to_be_bytes()); // no addresses
        rest.extend_from_slice(&1u32.to_be_bytes()); // one authdata
        rest.extend_from_slice(&1u16.to_be_bytes());
        put_counted(&mut rest, b"ad");
        put_counted(&mut rest, ticket);
        put_counted(&mut rest, b"");
        Credential {
            client: Principal::parse(client),
            server: Principal::parse(server),
            rest,
        }
    }

    /// What GSSAPI exports after S4U2Self and S4U2Proxy (seen with MIT
    /// 1.20): sessiond's TGT, the evidence ticket, the back end's ticket
    /// under the referral realm, a configuration entry.
    fn exported() -> Ccache {
        Ccache {
            header: vec![0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0],
            default: Principal::parse("alice@S4U.TEST"),
            credentials: vec![
                credential(
                    "HTTP/localhost@S4U.TEST",
                    "krbtgt/S4U.TEST@S4U.TEST",
                    b"tgt",
                ),
                credential("alice@S4U.TEST", "HTTP/localhost@S4U.TEST", b"evidence"),
                credential("alice@S4U.TEST", "HTTP/backend.localhost@", b"backend"),
                credential(
                    "alice@S4U.TEST",
                    "krb5_ccache_conf_data/proxy_impersonator@X-CACHECONF:",
                    b"HTTP/localhost@S4U.TEST",
                ),
            ],
        }
    }

    #[test]
    fn round_trip() {
        let c = exported();
        assert_eq!(Ccache::parse(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn only_the_one_ticket_is_kept() {
        let alice = Principal::parse("alice@S4U.TEST");
        let backend = Principal::parse("HTTP/backend.localhost@S4U.TEST");
        let one = exported().only_ticket(&alice, &backend).unwrap();
        assert_eq!(one.default, alice);
        assert_eq!(one.credentials.len(), 1);
        assert_eq!(one.credentials[0].server, backend, "named with its realm");
        let bytes = one.to_bytes();
        assert!(!bytes.windows(6).any(|w| w == b"krbtgt"), "no TGT");
        assert!(!bytes.windows(8).any(|w| w == b"evidence"));
        assert!(bytes.windows(7).any(|w| w == b"backend"));
        assert_eq!(Ccache::parse(&bytes).unwrap(), one);

        // nothing for another service, another realm or another client
        for (client, service) in [
            ("alice@S4U.TEST", "HTTP/other.localhost@S4U.TEST"),
            ("alice@S4U.TEST", "HTTP/backend.other@S4U.TEST"),
            ("alice@S4U.TEST", "HTTP@S4U.TEST"),
            ("bob@S4U.TEST", "HTTP/backend.localhost@S4U.TEST"),
            (
                "alice@S4U.TEST",
                "krb5_ccache_conf_data/proxy_impersonator@X-CACHECONF:",
            ),
        ] {
            let got = exported().only_ticket(&Principal::parse(client), &Principal::parse(service));
            assert!(got.is_none(), "{client} → {service}");
        }
    }

    #[test]
    fn several_tickets_and_whether_a_tgt_is_held() {
        let alice = Principal::parse("alice@S4U.TEST");
        let wanted = [
            Principal::parse("HTTP/backend.localhost@S4U.TEST"),
            Principal::parse("HTTP/other.localhost@S4U.TEST"),
        ];
        let mut c = exported();
        c.credentials.push(credential(
            "alice@S4U.TEST",
            "HTTP/other.localhost@S4U.TEST",
            b"other",
        ));
        assert!(
            !c.is_users_own_tgt(),
            "an S4U export is never handed out whole"
        );
        assert_eq!(c.credentials[0].end_time(), Some(37_000));
        let both = c.only_tickets(&alice, &wanted).unwrap();
        assert_eq!(both.credentials.len(), 2);
        assert!(!both.is_users_own_tgt());
        assert_eq!(
            both.only_ticket(&alice, &wanted[1])
                .unwrap()
                .credentials
                .len(),
            1
        );
        assert!(exported()
            .only_tickets(&alice, &[Principal::parse("HTTP/none@S4U.TEST")])
            .is_none());
    }

    #[test]
    fn never_a_tgt_nor_the_evidence_whatever_is_asked() {
        let alice = Principal::parse("alice@S4U.TEST");
        for asked in ["krbtgt/S4U.TEST@S4U.TEST", "HTTP/localhost@S4U.TEST"] {
            assert!(
                exported()
                    .only_ticket(&alice, &Principal::parse(asked))
                    .is_none(),
                "{asked}"
            );
        }
        // a user's own forwarded TGT qualifies for being handed out whole
        let own = Ccache {
            header: vec![],
            default: alice.clone(),
            credentials: vec![
                credential("alice@S4U.TEST", "krbtgt/S4U.TEST@S4U.TEST", b"tgt"),
                credential("alice@S4U.TEST", "HTTP/x@S4U.TEST", b"x"),
            ],
        };
        assert!(own.is_users_own_tgt());
        let mut foreign = own.clone();
        foreign.credentials.push(credential(
            "HTTP/localhost@S4U.TEST",
            "krbtgt/S4U.TEST@S4U.TEST",
            b"svc",
        ));
        assert!(
            !foreign.is_users_own_tgt(),
            "another principal's ticket inside"
        );
        let no_tgt = Ccache {
            credentials: vec![own.credentials[1].clone()],
            ..own.clone()
        };
        assert!(!no_tgt.is_users_own_tgt());
        assert!(
            !format!("{own:?}").contains("7, 7, 7"),
            "no session key in Debug: {own:?}"
        );
    }

    #[test]
    fn malformed_caches_are_errors() {
        assert_eq!(Ccache::parse(b""), Err(CcacheError::Version));
        assert_eq!(Ccache::parse(&[5, 3, 0, 0]), Err(CcacheError::Version));
        let bytes = exported().to_bytes();
        // a cut between two credentials leaves a shorter cache; any other
        // cut is an error
        for cut in 2..bytes.len() {
            if let Ok(c) = Ccache::parse(&bytes[..cut]) {
                assert!(c.credentials.len() < 4, "cut at {cut}");
            }
        }
        assert_eq!(
            Ccache::parse(&bytes[..bytes.len() - 1]),
            Err(CcacheError::Truncated)
        );
    }

    proptest! {
        /// Any bytes: an answer, never a panic or a huge allocation.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(mut bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if bytes.len() >= 2 {
                bytes[0] = 5;
                bytes[1] = 4;
            }
            let _ = Ccache::parse(&bytes);
        }

        /// Flipping one byte of a real-shaped cache: parsed or refused.
        #[test]
        fn damaged_caches_parse_or_fail_cleanly(at in 0usize..400, to in any::<u8>()) {
            let mut bytes = exported().to_bytes();
            let at = at % bytes.len();
            bytes[at] = to;
            if let Ok(c) = Ccache::parse(&bytes) {
                prop_assert_eq!(Ccache::parse(&c.to_bytes()).unwrap(), c);
            }
        }
    }
}
