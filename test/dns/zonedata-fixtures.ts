import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A zone file with every type the realm reads, the escapes RFC 1035 5.1 defines, UTF-8 and binary TXT,
 * RFC 3597 generic data (unknown types, and known types written generically), `$INCLUDE`s two deep (one with
 * its own origin), TTL 0, CLASS1 and owners in mixed case. `writeTrickyZone(dir)` writes it with its
 * includes and returns the top file's path.
 */
export const TRICKY_ZONE = "tricky.test.";

const HEX64 = "e2d3c916f6deeac73294e8268fb5885044a833fc5459588f4a9184cfc41a5766";
const HEX40 = "dd465c09cfa51fb45020cc83316fff21b9ec74ac";
const ECH = "AEn+DQBFKwAgACABWIHUGj4u+PIggYXcR5JF0gYk3dCRioBW8uJq9H4mKAAIAAEAAQABAANAEnB1YmxpYy50bHMtZWNoLmRldgAA";

export const TRICKY_MAIN = `; a tricky zone
$ORIGIN tricky.test.
$TTL 300
@       IN SOA ns1 hostmaster ( 2026120201 7200 900 1209600
                                0 )   ; minimum 0
        IN NS  ns1
        CLASS1 NS ns2.tricky.test.
@       3600 IN MX 10 Mail
@       TXT "v=spf1 mx -all"
@       CAA 0 issue "letsencrypt.org; validationmethods=dns-01"
@       CAA 128 IsSuEwIlD ";"
@       CAA 0 iodef "mailto:security@tricky.test"
ns1     A 192.0.2.1
ns2     A 192.0.2.2
Mail    A 192.0.2.10
zero    0 IN A 192.0.2.20
Mixed.Case A 192.0.2.21
Mixed.Case TXT "case kept"
\\065bc   A 192.0.2.22
txt1    TXT unquoted\\032with\\032escapes "quoted\\032space" "q\\"uote" "back\\\\slash" "semi;colon" dot\\.x
txt2    TXT "café ünïcödé €" "日本語"
txt3    TXT "line1\\010line2" "\\000\\255\\127" ""
txt4    TXT ( "multi"
              "line" ) ; comment after
txt5    TXT "${"x".repeat(255)}"
hinfo   HINFO "Intel x86" Linux
sub     NS ns.sub
        DS 12345 13 2 ${HEX64.toUpperCase()}
ns.sub  A 192.0.2.53
old     DNAME new.tricky.test.
naptr   NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.tricky.test.
        NAPTR 102 10 "U" "E2U+sip" "!^.*$!sip:info@tricky.test!" .
sshhost SSHFP 4 2 ${HEX64}
        SSHFP 1 1 ${HEX40}
_sip._udp SRV 10 60 5060 sip
sip     A 192.0.2.30
_443._tcp.www TLSA 3 1 1 ( ${HEX64.slice(0, 32)}
                           ${HEX64.slice(32)} )
www     A 192.0.2.80
svc     HTTPS 1 . port=8443 alpn=h2,h3 mandatory=port,alpn ipv4hint=192.0.2.20 ech=${ECH}
svc2    SVCB 0 svc.tricky.test.
svc3    SVCB 16 foo.tricky.test. key65280="hello world" dohpath=/q{?dns} ipv6hint=2001:db8::1,2001:DB8:0:0:0:0:0:2
*.wild  A 192.0.2.99
gen     TYPE65280 \\# 4 DEADbeef
gen2    TYPE65281 \\# 0
gen3    TYPE1 \\# 4 c0000233
gen4    A \\# 4 C0000234
gen5    TXT \\# 6 0568656c6c6f
gen6    TYPE16 \\# 4 03616263
$INCLUDE sub/hosts.inc hosts.tricky.test.
after   A 192.0.2.102
`;

/** Included with origin hosts.tricky.test.; includes more.inc from its own directory. */
export const TRICKY_HOSTS = `h1  A 192.0.2.101
H1  TXT "same node, other case"
$INCLUDE more.inc
`;
export const TRICKY_MORE = `h2  60 TXT "included two deep"
`;

export function writeTrickyZone(dir: string): string {
  mkdirSync(join(dir, "sub"), { recursive: true });
  writeFileSync(join(dir, "tricky.zone"), TRICKY_MAIN);
  writeFileSync(join(dir, "sub", "hosts.inc"), TRICKY_HOSTS);
  writeFileSync(join(dir, "sub", "more.inc"), TRICKY_MORE);
  return join(dir, "tricky.zone");
}

/** A reverse zone with RFC 2317 classless delegation labels. */
export const REVERSE_ZONE = "2.0.192.in-addr.arpa.";
export const REVERSE_FILE = `$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@       SOA ns1.tricky.test. hostmaster.tricky.test. 7 7200 900 1209600 300
@       NS  ns1.tricky.test.
0/25    NS  ns1.tricky.test.
1       CNAME 1.0/25
2       CNAME 2.0/25.2.0.192.in-addr.arpa.
128-26  NS  ns2.tricky.test.
129     CNAME 129.128-26
200     PTR www.tricky.test.
`;
