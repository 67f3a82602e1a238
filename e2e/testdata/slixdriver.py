#!/usr/bin/python3
"""slixdriver: one real XMPP client (slixmpp) driven by JSON lines.

The Go tests in package e2e start one process per client. The process
connects, authenticates and binds, then reads one JSON command per line on
stdin and writes one JSON event per line on stdout (flushed per line).
Logs, including the XML traffic with --debug, go to stderr.

Why a separate process per client: slixmpp is asyncio-based and keeps global
state per stream; one client per interpreter keeps failures isolated and lets
the Go side kill a stuck client without affecting the others.

Events (every object has "event"):
  session_start   jid, mech, tls, tls_version, alpn, mechs_offered, features
  auth_failed     condition, text, mech, mechs_offered
  tls_failed      reason
  connection_failed reason
  stream_error    condition, text, see_other_host, xml
  disconnected    reason                      (always the last event)
  message         from, to, type, id, body, subject, thread, delay,
                  delay_from, error, xml
  presence        from, to, type ("available" when absent), show, status,
                  priority (int or null), id, delay, error, xml
  roster_push     from, id, ver, items, xml
  iq              from, to, type, id, xml     (incoming get/set, observed only;
                                              slixmpp still answers it)
  result          id, ok, data | error {type, condition, text}

Commands (every object has "id", echoed in its result; "cmd" names it):
  send          to, [body], [type=chat], [subject], [thread], [stanza_id],
                [extra: raw XML string or list of strings, appended as children]
  presence      [show], [status], [priority], [to], [type], [stanza_id], [extra]
  roster_get    [ver]            -> {ver, items:[{jid,name,subscription,ask,
                                     approved,groups}], unchanged}
  roster_set    jid, [name], [groups]
  roster_remove jid
  disco_info    jid, [node]      -> {identities, features, xml}
  disco_items   jid, [node]      -> {items:[{jid,node,name}], xml}
  ping          jid              -> {rtt}
  version       jid              -> {name, version, os}
  time          jid              -> {tzo, utc}
  raw_iq        xml              -> {xml}   (the raw reply, also on error)
  send_raw      xml
  disconnect
  wait          seconds
  blocklist                      -> {items}          (XEP-0191, slixmpp xep_0191)
  block         jids
  unblock       [jids]           (none: unblock all)
  private_store xml              (XEP-0049, slixmpp xep_0049)
  private_get   ns, name         -> {xml}   (the stored element, or null)
  vcard_set     fields {NAME: text} | xml   (XEP-0054, slixmpp xep_0054)
  vcard_get     [jid]            -> {fields {NAME: text}, xml}  (default: own)
  last          jid              -> {seconds, status}  (XEP-0012, slixmpp xep_0012)
The plugins of the last four groups are loaded on first use, so clients that
do not use them behave exactly as before.
  drop [delay], sm_state, sm_request_ack, csi state, carbons [enable]
                                 XEP-0198/0352/0280; see "session features"
                                 below (events sm_enabled, sm_failed,
                                 session_resumed, dropped, carbon; option
                                 --plugin xep_0198 / xep_0352)
Errors of IQ replies come back as ok:false with the stanza error's type and
condition (RFC 6120 section 8.3); failures of the driver itself use type
"driver" (conditions: timeout, not-connected, bad-request, unknown-command,
internal-error). Every IQ has a timeout (--iq-timeout, 10 s).

Commands other than wait are held until the session has started (or the
connection has ended), so a test may send them right after spawning the
process, and they run in the order they arrive. Commands still waiting when
the connection ends fail with not-connected; commands that arrive after the
disconnected event get no result, because the process has exited. On stdin
EOF the client disconnects and the process exits 0.

Only the Debian package python3-slixmpp (1.8.x) is assumed; run it with
/usr/bin/python3.
"""

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import threading
import time
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

CLIENT_NS = "jabber:client"
STREAM_NS = "http://etherx.jabber.org/streams"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
ROSTER_NS = "jabber:iq:roster"
DELAY_NS = "urn:xmpp:delay"
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS_NS = "http://jabber.org/protocol/disco#items"

log = logging.getLogger("slixdriver")

_out_lock = threading.Lock()


def emit(obj):
    """Write one event line. ASCII-only JSON so the locale never matters."""
    line = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class DriverError(Exception):
    """A command failed before or without an XMPP error reply."""

    def __init__(self, condition, text=""):
        super().__init__(text or condition)
        self.condition = condition
        self.text = text


class StanzaFailure(Exception):
    """An IQ came back with type="error"; data carries the raw reply."""

    def __init__(self, error, data):
        super().__init__(error.get("condition"))
        self.error = error
        self.data = data


def q(ns, tag):
    return "{%s}%s" % (ns, tag)


def child_text(el, ns, tag):
    c = el.find(q(ns, tag))
    if c is None:
        return None
    return c.text or ""


def parse_error(el):
    """Return {type, condition, text, by} of a stanza's <error/> child, or None.

    RFC 6120 section 8.3.2: the condition is the one child element qualified
    by the stanzas namespace other than <text/>.
    """
    err = el.find(q(CLIENT_NS, "error"))
    if err is None:
        return None
    out = {"type": err.get("type"), "condition": None, "text": None, "by": err.get("by")}
    for c in err:
        if c.tag == q(STANZAS_NS, "text"):
            out["text"] = c.text or ""
        elif c.tag.startswith("{%s}" % STANZAS_NS) and out["condition"] is None:
            out["condition"] = c.tag.split("}", 1)[1]
    return out


def parse_fragment(xml_text):
    """Parse raw XML that may hold several top-level elements.

    The text is wrapped in an element in the jabber:client namespace so that
    unprefixed stanzas (<iq/>, <body/>) get the namespace they have on a
    client stream.
    """
    try:
        wrapper = ET.fromstring("<w xmlns='%s'>%s</w>" % (CLIENT_NS, xml_text))
    except ET.ParseError as e:
        raise DriverError("bad-request", "invalid XML: %s" % e)
    return list(wrapper)


def roster_items(query):
    items = []
    if query is None:
        return items
    for it in query.findall(q(ROSTER_NS, "item")):
        items.append({
            "jid": it.get("jid"),
            "name": it.get("name"),
            "subscription": it.get("subscription", "none"),
            "ask": it.get("ask"),
            "approved": it.get("approved") in ("true", "1"),
            "groups": [g.text or "" for g in it.findall(q(ROSTER_NS, "group"))],
        })
    return items


class Driver(slixmpp.ClientXMPP):
    def __init__(self, args):
        jid = slixmpp.JID(args.jid)
        if args.resource:
            jid.resource = args.resource
        super().__init__(jid, args.password, sasl_mech=args.mech)
        self.args = args
        self.target = (args.host, args.port)
        self.mechs_offered = []
        self.last_features = []
        self.session_started = False
        self.finished = asyncio.get_event_loop().create_future()
        self.ready = asyncio.get_event_loop().create_future()
        self.ended = False
        self.auth_rejected = False

        # The tests decide every subscription answer themselves (RFC 6121
        # section 3): slixmpp would otherwise approve and subscribe back.
        self.auto_authorize = None
        self.auto_subscribe = False

        # Real-client behaviour for requests the server or peers send us.
        for p in ("xep_0030", "xep_0092", "xep_0199", "xep_0202", "xep_0203"):
            self.register_plugin(p)
        # --plugin: features negotiated with the stream (xep_0198, xep_0352)
        # must be loaded before connecting; see the session section below.
        for p in args.plugin or []:
            self.register_plugin(p)
        self.dropping = None  # set by the drop command until reconnected
        session_events(self)

        if args.no_verify:
            self.ssl_context.check_hostname = False
            self.ssl_context.verify_mode = ssl.CERT_NONE
        if args.ca:
            self.ca_certs = args.ca
        if args.direct_tls:
            # XEP-0368 section 3: direct TLS clients offer ALPN "xmpp-client".
            self.ssl_context.set_alpn_protocols(["xmpp-client"])

        self.add_filter("in", self._observe)
        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("failed_auth", self._on_failed_auth)
        self.add_event_handler("no_auth", self._on_no_auth)
        self.add_event_handler("ssl_invalid_chain", self._on_ssl_invalid)
        self.add_event_handler("connection_failed", self._on_connection_failed)
        self.add_event_handler("disconnected", self._on_disconnected)

    # --- connection -------------------------------------------------------

    async def _pick_dns_answer(self, domain, port=None):
        # Always dial exactly --host:--port: the test server's domain is not
        # in DNS, and slixmpp would otherwise resolve it (or SRV-look it up).
        return (self.boundjid.domain, self.target[0], self.target[1])

    def start(self):
        self.connect(self.target, use_ssl=self.args.direct_tls,
                     disable_starttls=self.args.direct_tls)
        # connect() only takes the SNI/verification name from a hostname
        # argument; the server is addressed by IP, the certificate by domain.
        self.default_domain = self.boundjid.domain
        asyncio.get_event_loop().call_later(self.args.session_timeout, self._session_deadline)

    def _session_deadline(self):
        if not self.session_started and not self.ended:
            self.finish("no session within %gs" % self.args.session_timeout)

    def finish(self, reason):
        """Close the connection (if any) and end with a disconnected event."""
        if self.ended:
            return
        if self.transport is not None:
            self.disconnect(wait=2.0, reason=reason)
        else:
            self.cancel_connection_attempt()
            self._end(reason)

    def _end(self, reason):
        if self.ended:
            return
        self.ended = True
        if not self.ready.done():
            # Commands held for the session are woken (and fail) before the
            # disconnected event below, so that event stays the last line.
            self.ready.set_result(False)

        def last():
            emit({"event": "disconnected", "reason": reason})
            if not self.finished.done():
                self.finished.set_result(True)
        asyncio.get_event_loop().call_soon(last)

    def _on_disconnected(self, reason):
        if self.dropping is not None:
            dropped(self)  # the drop command: reconnect instead of ending
            return
        if reason is None and self.auth_rejected:
            reason = "authentication failed"
        self._end(None if reason is None else str(reason))

    def _on_connection_failed(self, err):
        emit({"event": "connection_failed", "reason": str(err)})
        # slixmpp would retry with back-off; a test wants a fast, clear end.
        self.finish("connection failed: %s" % err)

    def _on_ssl_invalid(self, err):
        emit({"event": "tls_failed", "reason": str(err)})
        self.finish("tls failed: %s" % err)

    def _on_failed_auth(self, failure):
        self.auth_rejected = True
        emit({
            "event": "auth_failed",
            "condition": failure["condition"],
            "text": failure["text"] or None,
            "mech": self["feature_mechanisms"].mech.name if self["feature_mechanisms"].mech else None,
            "mechs_offered": self.mechs_offered,
        })

    def _on_no_auth(self, _):
        self.auth_rejected = True
        emit({
            "event": "auth_failed",
            "condition": "no-appropriate-mechanism",
            "text": "requested %s, server offered %s" % (self.args.mech, self.mechs_offered),
            "mech": self.args.mech,
            "mechs_offered": self.mechs_offered,
        })

    def _on_session_start(self, _):
        self.session_started = True
        sock = self.socket
        tls = isinstance(sock, (ssl.SSLObject, ssl.SSLSocket))
        mech = self["feature_mechanisms"].mech
        emit({
            "event": "session_start",
            "jid": str(self.boundjid.full),
            "mech": mech.name if mech else None,
            "tls": tls,
            "tls_version": sock.version() if tls else None,
            "alpn": sock.selected_alpn_protocol() if tls else None,
            "mechs_offered": self.mechs_offered,
            "features": self.last_features,
        })
        if not self.ready.done():
            self.ready.set_result(True)

    # --- incoming stanzas -------------------------------------------------

    def _observe(self, stanza):
        """Incoming filter: report stanzas without claiming them.

        A filter (rather than a handler) keeps slixmpp's own handling intact,
        notably the feature-not-implemented answer to unhandled IQs.
        """
        try:
            self._report(stanza.xml, stanza)
        except Exception:  # never break the stream because of the harness
            log.exception("report failed")
        return stanza

    def _report(self, el, stanza):
        tag = el.tag
        if tag == q(STREAM_NS, "features"):
            self.last_features = [c.tag for c in el]
            mechs = el.find(q("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms"))
            if mechs is not None:
                self.mechs_offered = sorted(
                    (m.text or "").strip()
                    for m in mechs.findall(q("urn:ietf:params:xml:ns:xmpp-sasl", "mechanism")))
        elif tag == q(STREAM_NS, "error"):
            cond, text, other = None, None, None
            for c in el:
                local = c.tag.split("}", 1)[-1]
                if local == "text":
                    text = c.text or ""
                elif cond is None:
                    cond = local
                    if local == "see-other-host":
                        other = c.text
            emit({"event": "stream_error", "condition": cond, "text": text,
                  "see_other_host": other, "xml": str(stanza)})
        elif tag == q(CLIENT_NS, "message"):
            delay = el.find(q(DELAY_NS, "delay"))
            emit({
                "event": "message",
                "from": el.get("from"),
                "to": el.get("to"),
                "type": el.get("type", "normal"),
                "id": el.get("id"),
                "body": child_text(el, CLIENT_NS, "body"),
                "subject": child_text(el, CLIENT_NS, "subject"),
                "thread": child_text(el, CLIENT_NS, "thread"),
                "delay": delay.get("stamp") if delay is not None else None,
                "delay_from": delay.get("from") if delay is not None else None,
                "error": parse_error(el),
                "xml": str(stanza),
            })
        elif tag == q(CLIENT_NS, "presence"):
            prio = child_text(el, CLIENT_NS, "priority")
            try:
                prio = int(prio) if prio is not None else None
            except ValueError:
                pass  # report what the server sent
            delay = el.find(q(DELAY_NS, "delay"))
            emit({
                "event": "presence",
                "from": el.get("from"),
                "to": el.get("to"),
                "type": el.get("type", "available"),
                "show": child_text(el, CLIENT_NS, "show"),
                "status": child_text(el, CLIENT_NS, "status"),
                "priority": prio,
                "id": el.get("id"),
                "delay": delay.get("stamp") if delay is not None else None,
                "error": parse_error(el),
                "xml": str(stanza),
            })
        elif tag == q(CLIENT_NS, "iq") and el.get("type") in ("get", "set"):
            query = el.find(q(ROSTER_NS, "query"))
            frm = el.get("from")
            # RFC 6121 section 2.1.6: only pushes from the server (no from, or
            # our bare JID) are roster pushes; slixmpp rejects the others.
            if el.get("type") == "set" and query is not None and (
                    not frm or slixmpp.JID(frm).bare == self.boundjid.bare):
                emit({"event": "roster_push", "from": frm, "id": el.get("id"),
                      "ver": query.get("ver"), "items": roster_items(query),
                      "xml": str(stanza)})
            else:
                emit({"event": "iq", "from": frm, "to": el.get("to"),
                      "type": el.get("type"), "id": el.get("id"), "xml": str(stanza)})

    # --- commands ---------------------------------------------------------

    async def run_command(self, cmd):
        cid = cmd.get("id")
        try:
            name = cmd.get("cmd")
            fn = COMMANDS.get(name)
            if fn is None:
                raise DriverError("unknown-command", "unknown command %r" % (name,))
            if name == "disconnect":
                await self.ready  # keep the order of the commands before it
            elif name != "wait":
                if not await self.ready or self.ended:
                    raise DriverError("not-connected", "no session")
            data = await fn(self, cmd)
            emit({"event": "result", "id": cid, "ok": True, "data": data})
        except StanzaFailure as e:
            emit({"event": "result", "id": cid, "ok": False, "error": e.error, "data": e.data})
        except DriverError as e:
            emit({"event": "result", "id": cid, "ok": False,
                  "error": {"type": "driver", "condition": e.condition, "text": e.text}})
        except Exception as e:
            log.exception("command %r failed", cmd)
            emit({"event": "result", "id": cid, "ok": False,
                  "error": {"type": "driver", "condition": "internal-error", "text": repr(e)}})

    async def iq(self, itype, to, payload):
        """Send an IQ with one payload element and return the reply element.

        Raises StanzaFailure for type="error" replies and DriverError on
        timeout, so every IQ command fails the same way.
        """
        iq = self.Iq()
        iq["type"] = itype
        if to:
            iq["to"] = to
        if payload is not None:
            iq.append(payload)
        return await self.send_iq(iq)

    async def send_iq(self, iq):
        try:
            reply = await iq.send(timeout=self.args.iq_timeout)
        except IqError as e:
            raise StanzaFailure(parse_error(e.iq.xml) or {"type": None, "condition": None, "text": None},
                                {"xml": str(e.iq)})
        except IqTimeout:
            raise DriverError("timeout", "no reply within %gs" % self.args.iq_timeout)
        return reply


def need(cmd, key):
    v = cmd.get(key)
    if v is None or v == "":
        raise DriverError("bad-request", "missing %r" % key)
    return v


def append_extra(stanza, extra):
    if not extra:
        return
    if isinstance(extra, str):
        extra = [extra]
    for frag in extra:
        for el in parse_fragment(frag):
            stanza.append(el)


async def cmd_send(d, cmd):
    msg = d.make_message(mto=need(cmd, "to"), mbody=cmd.get("body"),
                         msubject=cmd.get("subject"), mtype=cmd.get("type", "chat"))
    if cmd.get("thread"):
        msg["thread"] = cmd["thread"]
    if cmd.get("stanza_id"):
        msg["id"] = cmd["stanza_id"]
    elif not msg["id"]:
        msg["id"] = d.new_id()
    append_extra(msg, cmd.get("extra"))
    msg.send()
    return {"id": msg["id"]}


async def cmd_presence(d, cmd):
    ptype = cmd.get("type")
    if ptype == "available":
        ptype = None
    pres = d.make_presence(pshow=cmd.get("show"), pstatus=cmd.get("status"),
                           ppriority=cmd.get("priority"), pto=cmd.get("to"))
    if ptype:
        pres["type"] = ptype
    if cmd.get("stanza_id"):
        pres["id"] = cmd["stanza_id"]
    append_extra(pres, cmd.get("extra"))
    pres.send()
    return {"id": pres["id"] or None}


async def cmd_roster_get(d, cmd):
    query = ET.Element(q(ROSTER_NS, "query"))
    if cmd.get("ver") is not None:
        query.set("ver", cmd["ver"])  # RFC 6121 section 2.6.2
    reply = await d.iq("get", None, query)
    got = reply.xml.find(q(ROSTER_NS, "query"))
    if got is None:
        # RFC 6121 section 2.6.3: unchanged roster, empty result.
        return {"ver": None, "items": None, "unchanged": True}
    return {"ver": got.get("ver"), "items": roster_items(got), "unchanged": False}


async def cmd_roster_set(d, cmd):
    query = ET.Element(q(ROSTER_NS, "query"))
    item = ET.SubElement(query, q(ROSTER_NS, "item"), {"jid": need(cmd, "jid")})
    if cmd.get("name") is not None:
        item.set("name", cmd["name"])
    for g in cmd.get("groups") or []:
        ET.SubElement(item, q(ROSTER_NS, "group")).text = g
    await d.iq("set", None, query)
    return None


async def cmd_roster_remove(d, cmd):
    query = ET.Element(q(ROSTER_NS, "query"))
    ET.SubElement(query, q(ROSTER_NS, "item"), {"jid": need(cmd, "jid"), "subscription": "remove"})
    await d.iq("set", None, query)
    return None


async def cmd_disco_info(d, cmd):
    query = ET.Element(q(DISCO_INFO_NS, "query"))
    if cmd.get("node"):
        query.set("node", cmd["node"])
    reply = await d.iq("get", need(cmd, "jid"), query)
    got = reply.xml.find(q(DISCO_INFO_NS, "query"))
    identities, features = [], []
    if got is not None:
        for i in got.findall(q(DISCO_INFO_NS, "identity")):
            identities.append({"category": i.get("category"), "type": i.get("type"),
                               "name": i.get("name"),
                               "lang": i.get("{http://www.w3.org/XML/1998/namespace}lang")})
        features = [f.get("var") for f in got.findall(q(DISCO_INFO_NS, "feature"))]
    return {"identities": identities, "features": features, "xml": str(reply)}


async def cmd_disco_items(d, cmd):
    query = ET.Element(q(DISCO_ITEMS_NS, "query"))
    if cmd.get("node"):
        query.set("node", cmd["node"])
    reply = await d.iq("get", need(cmd, "jid"), query)
    got = reply.xml.find(q(DISCO_ITEMS_NS, "query"))
    items = []
    if got is not None:
        for i in got.findall(q(DISCO_ITEMS_NS, "item")):
            items.append({"jid": i.get("jid"), "node": i.get("node"), "name": i.get("name")})
    return {"items": items, "xml": str(reply)}


async def cmd_ping(d, cmd):
    start = time.monotonic()
    await d.iq("get", need(cmd, "jid"), ET.Element(q("urn:xmpp:ping", "ping")))
    return {"rtt": time.monotonic() - start}


async def cmd_version(d, cmd):
    reply = await d.iq("get", need(cmd, "jid"), ET.Element(q("jabber:iq:version", "query")))
    got = reply.xml.find(q("jabber:iq:version", "query"))
    if got is None:
        return {"name": None, "version": None, "os": None, "xml": str(reply)}
    return {"name": child_text(got, "jabber:iq:version", "name"),
            "version": child_text(got, "jabber:iq:version", "version"),
            "os": child_text(got, "jabber:iq:version", "os"),
            "xml": str(reply)}


async def cmd_time(d, cmd):
    reply = await d.iq("get", need(cmd, "jid"), ET.Element(q("urn:xmpp:time", "time")))
    got = reply.xml.find(q("urn:xmpp:time", "time"))
    if got is None:
        return {"tzo": None, "utc": None, "xml": str(reply)}
    return {"tzo": child_text(got, "urn:xmpp:time", "tzo"),
            "utc": child_text(got, "urn:xmpp:time", "utc"),
            "xml": str(reply)}


async def cmd_raw_iq(d, cmd):
    els = parse_fragment(need(cmd, "xml"))
    if len(els) != 1 or els[0].tag != q(CLIENT_NS, "iq"):
        raise DriverError("bad-request", "raw_iq needs exactly one <iq/> element")
    el = els[0]
    if el.get("type") not in ("get", "set"):
        raise DriverError("bad-request", "raw_iq needs type get or set")
    iq = d.Iq(xml=el)
    if not el.get("id"):
        iq["id"] = d.new_id()
    reply = await d.send_iq(iq)
    return {"xml": str(reply)}


async def cmd_send_raw(d, cmd):
    d.send_raw(need(cmd, "xml"))
    return None


# --- session features: XEP-0191, XEP-0049, XEP-0054, XEP-0012 -------------

VCARD_NS = "vcard-temp"


def feature_plugin(d, name):
    """Load a slixmpp plugin on first use and return it."""
    if not d.plugin.enabled(name):
        d.register_plugin(name)
    return d.plugin[name]


async def plugin_iq(d, pending):
    """Await the IQ a plugin sent, failing like Driver.send_iq does."""
    try:
        return await pending
    except IqError as e:
        raise StanzaFailure(parse_error(e.iq.xml) or {"type": None, "condition": None, "text": None},
                            {"xml": str(e.iq)})
    except IqTimeout:
        raise DriverError("timeout", "no reply within %gs" % d.args.iq_timeout)


def jid_list(cmd, key):
    v = cmd.get(key) or []
    if isinstance(v, str):
        v = [v]
    return [slixmpp.JID(j) for j in v]


async def cmd_blocklist(d, cmd):
    p = feature_plugin(d, "xep_0191")
    reply = await plugin_iq(d, p.get_blocked(timeout=d.args.iq_timeout))
    return {"items": sorted(str(j) for j in reply["blocklist"]["items"]), "xml": str(reply)}


async def cmd_block(d, cmd):
    jids = jid_list(cmd, "jids")
    if not jids:
        raise DriverError("bad-request", "missing 'jids'")
    p = feature_plugin(d, "xep_0191")
    await plugin_iq(d, p.block(jids, timeout=d.args.iq_timeout))
    return None


async def cmd_unblock(d, cmd):
    p = feature_plugin(d, "xep_0191")
    await plugin_iq(d, p.unblock(jid_list(cmd, "jids"), timeout=d.args.iq_timeout))
    return None


async def cmd_private_store(d, cmd):
    els = parse_fragment(need(cmd, "xml"))
    if len(els) != 1:
        raise DriverError("bad-request", "private_store needs exactly one element")
    p = feature_plugin(d, "xep_0049")
    await plugin_iq(d, p.store(els[0], timeout=d.args.iq_timeout))
    return None


_private_classes = {}


async def cmd_private_get(d, cmd):
    ns, name = need(cmd, "ns"), need(cmd, "name")
    p = feature_plugin(d, "xep_0049")
    attrib = _private_classes.get((ns, name))
    if attrib is None:
        # xep_0049 retrieves registered payload classes only.
        attrib = "ownchat_private_%d" % len(_private_classes)
        cls = type("PrivateItem%d" % len(_private_classes), (slixmpp.xmlstream.ElementBase,),
                   {"name": name, "namespace": ns, "plugin_attrib": attrib, "interfaces": set()})
        p.register(cls)
        _private_classes[(ns, name)] = attrib
    reply = await plugin_iq(d, p.retrieve(attrib, timeout=d.args.iq_timeout))
    got = reply.xml.find(q("jabber:iq:private", "query"))
    child = got.find(q(ns, name)) if got is not None else None
    return {"xml": slixmpp.xmlstream.tostring(child) if child is not None else None}


async def cmd_vcard_set(d, cmd):
    p = feature_plugin(d, "xep_0054")
    if cmd.get("xml"):
        els = parse_fragment(cmd["xml"])
        if len(els) != 1 or els[0].tag != q(VCARD_NS, "vCard"):
            raise DriverError("bad-request", "vcard_set xml needs one <vCard xmlns='vcard-temp'/>")
        el = els[0]
    else:
        el = ET.Element(q(VCARD_NS, "vCard"))
        for name, text in (cmd.get("fields") or {}).items():
            ET.SubElement(el, q(VCARD_NS, name)).text = text
    vcard = p.stanza.VCardTemp(xml=el)
    await plugin_iq(d, p.publish_vcard(vcard, timeout=d.args.iq_timeout))
    return None


async def cmd_vcard_get(d, cmd):
    p = feature_plugin(d, "xep_0054")
    # The own bare JID, not None: for None slixmpp answers from its cache.
    jid = cmd.get("jid") or d.boundjid.bare
    reply = await plugin_iq(d, p.get_vcard(jid, local=False, timeout=d.args.iq_timeout))
    got = reply.xml.find(q(VCARD_NS, "vCard"))
    fields = {}
    if got is not None:
        for c in got:
            if len(c) == 0:
                fields[c.tag.split("}", 1)[-1]] = (c.text or "").strip()
    return {"fields": fields, "xml": str(reply)}


async def cmd_last(d, cmd):
    p = feature_plugin(d, "xep_0012")
    reply = await plugin_iq(d, p.get_last_activity(need(cmd, "jid"), timeout=d.args.iq_timeout))
    la = reply["last_activity"]
    return {"seconds": la["seconds"], "status": la["status"] or None, "xml": str(reply)}


async def cmd_disconnect(d, cmd):
    # Answer first: the disconnected event must be the last line.
    asyncio.get_event_loop().call_soon(d.finish, "disconnect command")
    return None


async def cmd_wait(d, cmd):
    await asyncio.sleep(float(cmd.get("seconds", 0)))
    return None


COMMANDS = {
    "send": cmd_send,
    "presence": cmd_presence,
    "roster_get": cmd_roster_get,
    "roster_set": cmd_roster_set,
    "roster_remove": cmd_roster_remove,
    "disco_info": cmd_disco_info,
    "disco_items": cmd_disco_items,
    "ping": cmd_ping,
    "version": cmd_version,
    "time": cmd_time,
    "raw_iq": cmd_raw_iq,
    "send_raw": cmd_send_raw,
    "disconnect": cmd_disconnect,
    "wait": cmd_wait,
    "blocklist": cmd_blocklist,
    "block": cmd_block,
    "unblock": cmd_unblock,
    "private_store": cmd_private_store,
    "private_get": cmd_private_get,
    "vcard_set": cmd_vcard_set,
    "vcard_get": cmd_vcard_get,
    "last": cmd_last,
}


# --- multi-user chat: XEP-0045 (slixmpp xep_0045), XEP-0249 --------------
#
#   muc_join          room, nick, [password], [maxstanzas|maxchars|seconds|since]
#                     -> {self: occupant, subject, subject_from, occupants, history}
#                     (an error presence fails the command with its condition)
#   muc_leave         room, nick, [status]
#   muc_nick          room, nick                (change nick, XEP-0045 section 7.6)
#   muc_send          room, body                -> {id}   (type groupchat)
#   muc_subject       room, subject
#   muc_config_get    room                      -> {fields {var: [values]}}
#   muc_config_submit room, [fields {var: value or [values]}]  (none: instant room)
#   muc_affiliation   room, affiliation, jid|nick, [reason]
#   muc_affiliations  room, affiliation         -> {jids}
#   muc_role          room, nick, role, [reason]
#   muc_invite        room, jid, [reason]       (mediated, section 7.8.2)
#   muc_direct_invite jid, room, [reason], [password]  (XEP-0249)
#   muc_destroy       room, [reason], [altroom]
# An occupant is {nick, jid, affiliation, role, codes}; presence events
# carry the raw XML, from which tests read status codes.

MUC_USER_NS = "http://jabber.org/protocol/muc#user"


def muc_plugin(d):
    p = feature_plugin(d, "xep_0045")
    # slixmpp 1.8 prints history delays to stdout in join_muc_wait, which
    # would corrupt the JSON lines; silence it in that module only.
    import slixmpp.plugins.xep_0045.muc as mucmod
    mucmod.print = lambda *a, **k: None
    return p


def muc_occupant(pres):
    x = pres.xml.find(q(MUC_USER_NS, "x"))
    item = x.find(q(MUC_USER_NS, "item")) if x is not None else None
    return {
        "nick": slixmpp.JID(pres["from"]).resource,
        "jid": item.get("jid") if item is not None else None,
        "affiliation": item.get("affiliation") if item is not None else None,
        "role": item.get("role") if item is not None else None,
        "codes": sorted(s.get("code") for s in x.findall(q(MUC_USER_NS, "status"))) if x is not None else [],
    }


async def cmd_muc_join(d, cmd):
    p = muc_plugin(d)
    room, nick = slixmpp.JID(need(cmd, "room")), need(cmd, "nick")
    kw = {}
    for k in ("maxstanzas", "maxchars", "seconds"):
        if cmd.get(k) is not None:
            kw[k] = int(cmd[k])
    if cmd.get("since"):
        from datetime import datetime
        kw["since"] = datetime.fromisoformat(cmd["since"].replace("Z", "+00:00"))
    try:
        pres, subject, occupants, history = await p.join_muc_wait(
            room, nick, password=cmd.get("password"), timeout=d.args.iq_timeout, **kw)
    except slixmpp.exceptions.PresenceError as e:
        raise StanzaFailure(parse_error(e.presence.xml) or {"type": None, "condition": None, "text": None},
                            {"xml": str(e.presence)})
    except asyncio.TimeoutError:
        raise DriverError("timeout", "no self-presence and subject within %gs" % d.args.iq_timeout)
    return {
        "self": muc_occupant(pres),
        "subject": subject["subject"],
        "subject_from": str(subject["from"]),
        "occupants": [muc_occupant(o) for o in occupants
                      if slixmpp.JID(o["from"]).resource != pres["from"].resource],
        "history": [{"from": str(m["from"]), "body": m["body"],
                     "delay": m.xml.find(q(DELAY_NS, "delay")).get("stamp")
                     if m.xml.find(q(DELAY_NS, "delay")) is not None else None}
                    for m in history],
    }


async def cmd_muc_leave(d, cmd):
    pres = d.make_presence(pto="%s/%s" % (need(cmd, "room"), need(cmd, "nick")), ptype="unavailable",
                           pstatus=cmd.get("status"))
    pres.send()
    p = muc_plugin(d)
    p.rooms.pop(slixmpp.JID(cmd["room"]), None)
    return None


async def cmd_muc_nick(d, cmd):
    d.make_presence(pto="%s/%s" % (need(cmd, "room"), need(cmd, "nick"))).send()
    return None


async def cmd_muc_send(d, cmd):
    msg = d.make_message(mto=need(cmd, "room"), mbody=need(cmd, "body"), mtype="groupchat")
    msg["id"] = cmd.get("stanza_id") or d.new_id()
    msg.send()
    return {"id": msg["id"]}


async def cmd_muc_subject(d, cmd):
    muc_plugin(d).set_subject(slixmpp.JID(need(cmd, "room")), cmd.get("subject") or "")
    return None


async def cmd_muc_config_get(d, cmd):
    p = muc_plugin(d)
    try:
        form = await p.get_room_config(slixmpp.JID(need(cmd, "room")), timeout=d.args.iq_timeout)
    except IqError as e:
        raise StanzaFailure(parse_error(e.iq.xml) or {"type": None, "condition": None, "text": None},
                            {"xml": str(e.iq)})
    except IqTimeout:
        raise DriverError("timeout", "no reply within %gs" % d.args.iq_timeout)
    fields = {}
    for f in form.xml.findall(q("jabber:x:data", "field")):
        fields[f.get("var")] = [v.text or "" for v in f.findall(q("jabber:x:data", "value"))]
    return {"fields": fields, "xml": str(form)}


async def cmd_muc_config_submit(d, cmd):
    p = muc_plugin(d)
    form = d.plugin["xep_0004"].make_form(ftype="submit")
    fields = cmd.get("fields") or {}
    if fields:
        form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/muc#roomconfig")
    for var, val in fields.items():
        form.add_field(var=var, value=val)
    await plugin_iq(d, p.set_room_config(slixmpp.JID(need(cmd, "room")), form, timeout=d.args.iq_timeout))
    return None


async def cmd_muc_affiliation(d, cmd):
    p = muc_plugin(d)
    await plugin_iq(d, p.set_affiliation(slixmpp.JID(need(cmd, "room")), need(cmd, "affiliation"),
                                         jid=slixmpp.JID(cmd["jid"]) if cmd.get("jid") else None,
                                         nick=cmd.get("nick"), reason=cmd.get("reason") or "",
                                         timeout=d.args.iq_timeout))
    return None


async def cmd_muc_affiliations(d, cmd):
    p = muc_plugin(d)
    jids = await plugin_iq(d, p.get_affiliation_list(slixmpp.JID(need(cmd, "room")), need(cmd, "affiliation"),
                                                     timeout=d.args.iq_timeout))
    return {"jids": sorted(str(j) for j in jids)}


async def cmd_muc_role(d, cmd):
    p = muc_plugin(d)
    await plugin_iq(d, p.set_role(slixmpp.JID(need(cmd, "room")), need(cmd, "nick"), need(cmd, "role"),
                                  reason=cmd.get("reason") or "", timeout=d.args.iq_timeout))
    return None


async def cmd_muc_invite(d, cmd):
    muc_plugin(d).invite(slixmpp.JID(need(cmd, "room")), slixmpp.JID(need(cmd, "jid")), cmd.get("reason") or "")
    return None


async def cmd_muc_direct_invite(d, cmd):
    msg = d.make_message(mto=need(cmd, "jid"))
    x = ET.Element(q("jabber:x:conference", "x"), {"jid": need(cmd, "room")})
    if cmd.get("reason"):
        x.set("reason", cmd["reason"])
    if cmd.get("password"):
        x.set("password", cmd["password"])
    msg.append(x)
    msg.send()
    return None


async def cmd_muc_destroy(d, cmd):
    p = muc_plugin(d)
    await plugin_iq(d, p.destroy(slixmpp.JID(need(cmd, "room")), cmd.get("reason") or "",
                                 slixmpp.JID(cmd["altroom"]) if cmd.get("altroom") else None,
                                 timeout=d.args.iq_timeout))
    return None


COMMANDS.update({
    "muc_join": cmd_muc_join,
    "muc_leave": cmd_muc_leave,
    "muc_nick": cmd_muc_nick,
    "muc_send": cmd_muc_send,
    "muc_subject": cmd_muc_subject,
    "muc_config_get": cmd_muc_config_get,
    "muc_config_submit": cmd_muc_config_submit,
    "muc_affiliation": cmd_muc_affiliation,
    "muc_affiliations": cmd_muc_affiliations,
    "muc_role": cmd_muc_role,
    "muc_invite": cmd_muc_invite,
    "muc_direct_invite": cmd_muc_direct_invite,
    "muc_destroy": cmd_muc_destroy,
})


# --- session features: XEP-0198, XEP-0352, XEP-0280 ------------------------
#
# Stream management and CSI are negotiated with the stream, so their plugins
# are loaded at start with --plugin xep_0198 / --plugin xep_0352; carbons
# are loaded on first use.
#
#   Events:
#     sm_enabled      id, resume                 (XEP-0198 <enabled/>)
#     sm_failed       xml                        (<failed/> to enable or resume)
#     session_resumed                            (<resumed/> after drop)
#     dropped         reason                     (the drop command's connection loss)
#     carbon          direction (received|sent), from, to, type,
#                     inner_from, inner_to, body, xml   (XEP-0280 copy)
#   Commands:
#     drop          [delay]   close the TCP connection without </stream:stream>
#                             (a lost connection), then reconnect after delay
#                             seconds (default 0.5) and resume (xep_0198)
#     sm_state      -> {enabled, id, handled, seq, last_ack, unacked}
#     sm_request_ack          send <r/>
#     csi           state (active|inactive)      (XEP-0352 nonza; with
#                             --plugin xep_0352 through the plugin, which
#                             fails unless the server offered <csi/>)
#     carbons       [enable=true]                (XEP-0280 enable / disable)

SM_NS = "urn:xmpp:sm:3"
CARBONS_NS = "urn:xmpp:carbons:2"
FORWARD_NS = "urn:xmpp:forward:0"


def session_events(d):
    d.add_event_handler("sm_enabled", lambda st: emit(
        {"event": "sm_enabled", "id": st["id"] or None, "resume": st["resume"], "max": st["max"] or None}))
    d.add_event_handler("sm_failed", lambda st: emit({"event": "sm_failed", "xml": str(st)}))
    d.add_event_handler("session_resumed", lambda st: emit({"event": "session_resumed"}))
    d.add_event_handler("carbon_received", lambda m: emit_carbon(m, "received"))
    d.add_event_handler("carbon_sent", lambda m: emit_carbon(m, "sent"))


def emit_carbon(msg, direction):
    inner = None
    wrap = msg.xml.find(q(CARBONS_NS, direction))
    if wrap is not None:
        fw = wrap.find(q(FORWARD_NS, "forwarded"))
        if fw is not None:
            inner = fw.find(q(CLIENT_NS, "message"))
    emit({
        "event": "carbon",
        "direction": direction,
        "from": msg["from"].full,
        "to": msg["to"].full,
        "type": msg.xml.get("type", "normal"),
        "inner_from": inner.get("from") if inner is not None else None,
        "inner_to": inner.get("to") if inner is not None else None,
        "body": child_text(inner, CLIENT_NS, "body") if inner is not None else None,
        "xml": str(msg),
    })


def dropped(d):
    delay, d.dropping = d.dropping, None
    emit({"event": "dropped", "reason": "drop command"})
    asyncio.get_event_loop().call_later(delay, lambda: d.connect(
        d.target, use_ssl=d.args.direct_tls, disable_starttls=d.args.direct_tls))


async def cmd_drop(d, cmd):
    if not d.plugin.enabled("xep_0198") or d.transport is None:
        raise DriverError("bad-request", "drop needs --plugin xep_0198 and a connection")
    d.dropping = float(cmd.get("delay", 0.5))

    def lose():
        # abort() skips </stream:stream>: for the server the connection is
        # lost, not closed, so the session stays resumable.
        if d.transport is not None:
            d.transport.abort()
    asyncio.get_event_loop().call_soon(lose)  # after this command's result
    return None


async def cmd_sm_state(d, cmd):
    if not d.plugin.enabled("xep_0198"):
        raise DriverError("bad-request", "sm_state needs --plugin xep_0198")
    p = d.plugin["xep_0198"]
    return {"enabled": p.enabled_in, "id": p.sm_id, "handled": p.handled, "seq": p.seq,
            "last_ack": p.last_ack, "unacked": len(p.unacked_queue)}


async def cmd_sm_request_ack(d, cmd):
    d.plugin["xep_0198"].request_ack()
    return None


async def cmd_csi(d, cmd):
    state = need(cmd, "state")
    if state not in ("active", "inactive"):
        raise DriverError("bad-request", "state must be active or inactive")
    if d.plugin.enabled("xep_0352"):
        p = d.plugin["xep_0352"]
        if not p.enabled:
            raise DriverError("bad-request", "the server did not offer <csi/>")
        p.send_active() if state == "active" else p.send_inactive()
    else:
        d.send_raw("<%s xmlns='urn:xmpp:csi:0'/>" % state)
    return None


async def cmd_carbons(d, cmd):
    p = feature_plugin(d, "xep_0280")
    if cmd.get("enable", True):
        await plugin_iq(d, p.enable(timeout=d.args.iq_timeout))
    else:
        await plugin_iq(d, p.disable(timeout=d.args.iq_timeout))
    return None


COMMANDS.update({
    "drop": cmd_drop,
    "sm_state": cmd_sm_state,
    "sm_request_ack": cmd_sm_request_ack,
    "csi": cmd_csi,
    "carbons": cmd_carbons,
})


SEARCH_NS = "jabber:iq:search"
XDATA_NS = "jabber:x:data"


async def cmd_search(d, cmd):
    """XEP-0055 with data forms, as a client's search dialog does it: get
    the form, fill in cmd["fields"] (var -> text), submit. Returns the form's
    field vars and instructions, and the result's reported vars and items
    (var -> value). With no "fields", only the form is fetched."""
    jid = need(cmd, "jid")
    reply = await d.iq("get", jid, ET.Element(q(SEARCH_NS, "query")))
    form = reply.xml.find(q(SEARCH_NS, "query") + "/" + q(XDATA_NS, "x"))
    if form is None:
        raise DriverError("bad-reply", "no data form in the search form reply")
    out = {"form_fields": [f.get("var") for f in form.findall(q(XDATA_NS, "field"))],
           "instructions": (form.findtext(q(XDATA_NS, "instructions")) or ""),
           "form_xml": str(reply)}
    fields = cmd.get("fields")
    if not fields:
        return out
    query = ET.Element(q(SEARCH_NS, "query"))
    x = ET.SubElement(query, q(XDATA_NS, "x"), {"type": "submit"})
    ft = ET.SubElement(x, q(XDATA_NS, "field"), {"var": "FORM_TYPE", "type": "hidden"})
    ET.SubElement(ft, q(XDATA_NS, "value")).text = SEARCH_NS
    for var, val in fields.items():
        f = ET.SubElement(x, q(XDATA_NS, "field"), {"var": var})
        ET.SubElement(f, q(XDATA_NS, "value")).text = val
    res = await d.iq("set", jid, query)
    rx = res.xml.find(q(SEARCH_NS, "query") + "/" + q(XDATA_NS, "x"))
    if rx is None:
        raise DriverError("bad-reply", "no data form in the search result")
    reported = [f.get("var") for f in rx.findall(q(XDATA_NS, "reported") + "/" + q(XDATA_NS, "field"))]
    items = []
    for it in rx.findall(q(XDATA_NS, "item")):
        items.append({f.get("var"): (f.findtext(q(XDATA_NS, "value")) or "")
                      for f in it.findall(q(XDATA_NS, "field"))})
    out.update({"type": rx.get("type"), "title": rx.findtext(q(XDATA_NS, "title")) or "",
                "reported": reported, "items": items, "xml": str(res)})
    return out


COMMANDS.update({
    "search": cmd_search,
})


# --- PEP: XEP-0163 with slixmpp's xep_0060, xep_0163, xep_0115 -------------
#   pep_interest  nodes          (NODE+notify in disco#info and caps; send a
#                                 presence afterwards so the server sees them)
#   pep_publish   node, xml, [item_id], [options {var: value}] -> {id, xml}
#   pep_items     jid, node, [max_items], [ids] -> {items [{id, xml}], xml}
#   pep_retract   node, item_id, [notify]
# Notifications arrive as message events; their xml holds the <event/>.

PUBSUB_NS = "http://jabber.org/protocol/pubsub"


async def cmd_pep_interest(d, cmd):
    caps = feature_plugin(d, "xep_0115")
    pep = feature_plugin(d, "xep_0163")
    for node in need(cmd, "nodes"):
        pep.add_interest(node)
    # add_interest schedules the caps update; wait for it so that the next
    # presence carries the new ver.
    await caps.update_caps(broadcast=False)
    return None


async def cmd_pep_publish(d, cmd):
    node = need(cmd, "node")
    els = parse_fragment(need(cmd, "xml"))
    if len(els) != 1:
        raise DriverError("bad-request", "pep_publish needs exactly one payload element")
    p = feature_plugin(d, "xep_0060")
    options = None
    if cmd.get("options"):
        options = feature_plugin(d, "xep_0004").make_form(ftype="submit")
        options.add_field(var="FORM_TYPE", ftype="hidden", value=PUBSUB_NS + "#publish-options")
        for var, val in cmd["options"].items():
            options.add_field(var=var, value=val)
    reply = await plugin_iq(d, p.publish(None, node, id=cmd.get("item_id"), payload=els[0],
                                         options=options, timeout=d.args.iq_timeout))
    item = reply.xml.find(q(PUBSUB_NS, "pubsub") + "/" + q(PUBSUB_NS, "publish") + "/" + q(PUBSUB_NS, "item"))
    return {"id": item.get("id") if item is not None else None, "xml": str(reply)}


async def cmd_pep_items(d, cmd):
    p = feature_plugin(d, "xep_0060")
    reply = await plugin_iq(d, p.get_items(need(cmd, "jid"), need(cmd, "node"),
                                           item_ids=cmd.get("ids"), max_items=cmd.get("max_items"),
                                           timeout=d.args.iq_timeout))
    items = []
    got = reply.xml.find(q(PUBSUB_NS, "pubsub") + "/" + q(PUBSUB_NS, "items"))
    for it in (got if got is not None else []):
        payload = list(it)
        items.append({"id": it.get("id"),
                      "xml": slixmpp.xmlstream.tostring(payload[0]) if payload else None})
    return {"items": items, "xml": str(reply)}


async def cmd_pep_retract(d, cmd):
    p = feature_plugin(d, "xep_0060")
    await plugin_iq(d, p.retract(None, need(cmd, "node"), need(cmd, "item_id"),
                                 notify=cmd.get("notify"), timeout=d.args.iq_timeout))
    return None


COMMANDS.update({
    "pep_interest": cmd_pep_interest,
    "pep_publish": cmd_pep_publish,
    "pep_items": cmd_pep_items,
    "pep_retract": cmd_pep_retract,
})


# --- User avatars: XEP-0084 with slixmpp's xep_0084 --------------------------
#   avatar_metadata  jid -> {id, info [{id, type, bytes, width, height, url}], xml}
#   avatar_data      jid, item_id -> {sha1, size}
#   avatar_publish   data (base64), type, [width], [height] -> {id}
#                    (data item, then metadata, as XEP-0084 §4 orders it)

AVATAR_META_NS = "urn:xmpp:avatar:metadata"


async def cmd_avatar_metadata(d, cmd):
    feature_plugin(d, "xep_0084")  # registers the metadata stanza plugins
    p = feature_plugin(d, "xep_0060")
    reply = await plugin_iq(d, p.get_items(need(cmd, "jid"), AVATAR_META_NS, max_items=1,
                                           timeout=d.args.iq_timeout))
    item = reply.xml.find(q(PUBSUB_NS, "pubsub") + "/" + q(PUBSUB_NS, "items") + "/" + q(PUBSUB_NS, "item"))
    if item is None:
        return {"id": None, "info": [], "xml": str(reply)}
    info = []
    for i in item.iter(q(AVATAR_META_NS, "info")):
        info.append({k: i.get(k) for k in ("id", "type", "bytes", "width", "height", "url")})
    return {"id": item.get("id"), "info": info, "xml": str(reply)}


async def cmd_avatar_data(d, cmd):
    import base64
    import hashlib
    p = feature_plugin(d, "xep_0084")
    reply = await plugin_iq(d, p.retrieve_avatar(need(cmd, "jid"), need(cmd, "item_id"),
                                                 timeout=d.args.iq_timeout))
    # Parsed here: Data.get_value of slixmpp 1.8 calls bytes() on a str.
    el = reply.xml.find(q(PUBSUB_NS, "pubsub") + "/" + q(PUBSUB_NS, "items") + "/" + q(PUBSUB_NS, "item")
                        + "/" + q("urn:xmpp:avatar:data", "data"))
    if el is None:
        raise DriverError("bad-request", "no avatar data in %s" % reply)
    data = base64.b64decode("".join((el.text or "").split()))
    return {"sha1": hashlib.sha1(data).hexdigest(), "size": len(data)}


async def cmd_avatar_publish(d, cmd):
    import base64
    import hashlib
    p = feature_plugin(d, "xep_0084")
    data = base64.b64decode(need(cmd, "data"))
    await plugin_iq(d, p.publish_avatar(data, timeout=d.args.iq_timeout))
    aid = hashlib.sha1(data).hexdigest()
    # Attribute values as strings: slixmpp's add_info sets them unconverted.
    meta = {"id": aid, "type": need(cmd, "type"), "bytes": str(len(data))}
    for k in ("width", "height"):
        if cmd.get(k):
            meta[k] = str(cmd[k])
    await plugin_iq(d, p.publish_avatar_metadata([meta], timeout=d.args.iq_timeout))
    return {"id": aid}


COMMANDS.update({
    "avatar_metadata": cmd_avatar_metadata,
    "avatar_data": cmd_avatar_data,
    "avatar_publish": cmd_avatar_publish,
})


def read_stdin(loop, on_line):
    """Feed stdin lines to the loop from a thread.

    A thread works for pipes, files and terminals alike and has no line-length
    limit, unlike asyncio's StreamReader. None marks EOF.
    """
    for raw in iter(sys.stdin.buffer.readline, b""):
        loop.call_soon_threadsafe(on_line, raw.decode("utf-8", "replace"))
    loop.call_soon_threadsafe(on_line, None)


async def amain(args):
    loop = asyncio.get_event_loop()
    d = Driver(args)
    tasks = set()

    def on_line(line):
        if line is None:
            d.finish("stdin closed")
            return
        line = line.strip()
        if not line:
            return
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise ValueError("not an object")
        except ValueError as e:
            emit({"event": "result", "id": None, "ok": False,
                  "error": {"type": "driver", "condition": "bad-request", "text": "bad JSON: %s" % e}})
            return
        t = loop.create_task(d.run_command(cmd))
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    threading.Thread(target=read_stdin, args=(loop, on_line), daemon=True).start()
    d.start()
    await d.finished
    # Let results already computed reach stdout before the process exits.
    await asyncio.sleep(0)


# --- XEP-0313 message archive (slixmpp xep_0313 + xep_0059) ----------------

def parse_iso(value):
    from datetime import datetime
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


async def cmd_mam_query(d, cmd):
    """mam_query [jid] [with] [start] [end] [max=50] [reverse]: page through
    an archive (own account without jid; a room with jid) with slixmpp's
    iterator, max results per page, forwards or (reverse) backwards from
    the newest. -> {messages:[{id, body, from, to, stanza_id}], pages}
    in the order received (newest first when reverse)."""
    p = feature_plugin(d, "xep_0313")
    jid = cmd.get("jid")
    with_jid = cmd.get("with")
    out = []
    it = p.iterate(jid=slixmpp.JID(jid) if jid else None,
                   start=parse_iso(cmd.get("start")), end=parse_iso(cmd.get("end")),
                   with_jid=slixmpp.JID(with_jid) if with_jid else None,
                   reverse=bool(cmd.get("reverse", False)),
                   rsm={"max": int(cmd.get("max", 50))})
    async for m in it:
        res = m["mam_result"]
        fwd = res["forwarded"]["stanza"]
        sid = fwd.xml.find("{urn:xmpp:sid:0}stanza-id")
        out.append({"id": res["id"], "body": fwd["body"], "from": str(fwd["from"]),
                    "to": str(fwd["to"]),
                    "stanza_id": sid.get("id") if sid is not None else None})
    return {"messages": out}


COMMANDS.update({
    "mam_query": cmd_mam_query,
})


async def cmd_mam_raw(d, cmd):
    """mam_raw xml: send one raw MAM query <iq/> (as raw_iq) and collect the
    <result/> messages carrying its queryid, in arrival order, until the
    reply (fin) arrives. -> {results:[{id, queryid, from, xml}], xml}
    (xml: the raw reply; an error reply fails like raw_iq)."""
    els = parse_fragment(need(cmd, "xml"))
    if len(els) != 1 or els[0].tag != q(CLIENT_NS, "iq"):
        raise DriverError("bad-request", "mam_raw needs exactly one <iq/> element")
    el = els[0]
    query = next((c for c in el if c.tag.endswith("}query")), None)
    qid = query.get("queryid") if query is not None else None
    results = []

    def collect(stanza):
        try:
            res = stanza.xml.find("{urn:xmpp:mam:2}result")
            if stanza.xml.tag == q(CLIENT_NS, "message") and res is not None and res.get("queryid") == qid:
                results.append({"id": res.get("id"), "queryid": res.get("queryid"),
                                "from": stanza.xml.get("from"), "xml": str(stanza)})
        except Exception:
            log.exception("mam_raw collect failed")
        return stanza

    d.add_filter("in", collect)
    try:
        iq = d.Iq(xml=el)
        if not el.get("id"):
            iq["id"] = d.new_id()
        reply = await d.send_iq(iq)
    finally:
        d.del_filter("in", collect)
    return {"results": results, "xml": str(reply)}


COMMANDS.update({
    "mam_raw": cmd_mam_raw,
})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5222)
    ap.add_argument("--mech", choices=["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"],
                    help="authenticate with exactly this SASL mechanism")
    ap.add_argument("--direct-tls", action="store_true", help="XEP-0368 TLS on connect instead of STARTTLS")
    ap.add_argument("--no-verify", action="store_true", help="accept any server certificate")
    ap.add_argument("--ca", help="PEM file of CAs to verify the server certificate with")
    ap.add_argument("--resource")
    ap.add_argument("--plugin", action="append",
                    help="also load this slixmpp plugin before connecting (repeatable), e.g. xep_0198")
    ap.add_argument("--iq-timeout", type=float, default=10.0)
    ap.add_argument("--session-timeout", type=float, default=20.0,
                    help="give up when no session has started after this many seconds")
    ap.add_argument("--debug", action="store_true", help="log XML traffic to stderr")
    args = ap.parse_args()

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        stream=sys.stderr,
                        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    code = 0
    try:
        asyncio.run(amain(args))
    except Exception:
        log.exception("driver crashed")
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # The stdin thread may still be blocked in read(); do not wait for it.
    os._exit(code)


if __name__ == "__main__":
    main()
