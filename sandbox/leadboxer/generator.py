"""Deterministic LeadBoxer dataset generator (``random.Random(seed)``, no wall clock).

``generate_dataset`` returns the same dict format as a ``--data`` file::

    {"site": ..., "segments": [...], "leads": [{...lead, "segments": [ids],
                                                "sessions": [{...session, "events": [...]}]}]}
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

DEFAULT_SITE = "07bacbd9d46a4e26b58b15d69f69250f"
DEFAULT_SEGMENT_ID = 14118
TOP_LEADS_SEGMENT_ID = 14119
WEB_VISITORS_SEGMENT_ID = 14120
DEFAULT_START = "2026-11-20T00:00:00Z"
ACCOUNT_ID = "5f1c0e2a9b7d4c3e8a6f0b1d2c3e4f5a"

SITE_ROOT = "https://www.example.com"
SITE_BRAND = "Example Analytics"
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

_FIRST_NAMES = [
    "Jan", "Sanne", "Pieter", "Emma", "Lucas", "Julia", "Daan", "Sophie", "Lars", "Anna", "Thomas", "Lisa",
    "Max", "Eva", "Noah", "Laura", "Tim", "Fleur", "Bram", "Sarah", "Oliver", "Charlotte", "James", "Amelia",
    "Felix", "Hannah", "Jonas", "Mia", "Liam", "Olivia", "Mateo", "Lucía", "Hugo", "Chloé", "Søren", "Ines",
    "Marco", "Giulia", "Ahmed", "Fatima", "Wei", "Priya", "Kenji", "Zoë", "Björn", "Anaïs",
]
_LAST_NAMES = [
    "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "Bos", "Vos", "Peters",
    "Hendriks", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Smith", "Johnson", "Brown", "Taylor",
    "Wilson", "Martin", "Bernard", "Dubois", "García", "Fernández", "Rossi", "Russo", "Nielsen", "Hansen",
    "Andersson", "Kowalski", "Novak", "O'Brien", "Murphy", "Khan", "Patel", "Chen", "Tanaka", "van Dijk",
]
_JOB_TITLES = [
    "Head of Operations", "Marketing Manager", "CTO", "CEO", "Sales Director", "Data Analyst",
    "Product Manager", "Procurement Lead", "IT Manager", "Growth Marketer", "VP Sales", "Founder",
    "Business Development Manager", "Head of Marketing", "Operations Manager", "Software Engineer",
]
_FREE_MAIL = ["gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "proton.me"]
_CO_PREFIX = [
    "Acme", "Nordwind", "Blue", "Bright", "Delta", "Green", "Iron", "Lumen", "North", "Oak", "Polar",
    "Quant", "Red", "Silver", "Stone", "Sun", "Vertex", "West", "Zenith", "Alpha", "Cobalt", "Falcon",
    "Harbor", "Maple", "Orbit", "Pixel", "River", "Summit", "Tidal", "Urban",
]
_CO_CORE = [
    "Logistics", "Systems", "Labs", "Foods", "Energy", "Works", "Data", "Health", "Capital", "Motion",
    "Soft", "Tech", "Media", "Robotics", "Solutions", "Analytics", "Retail", "Freight", "Bio", "Cloud",
]
_CO_LEGAL = [("BV", "nl"), ("GmbH", "de"), ("Ltd", "co.uk"), ("Inc", "com"), ("SAS", "fr"), ("AB", "se"),
             ("NV", "be"), ("SL", "es")]
_LOCATIONS = {  # tld -> (country, code, [(city, region)], phone prefix, ip prefix)
    "nl": ("Netherlands", "NL", [("Amsterdam", "North Holland"), ("Rotterdam", "South Holland"),
                                 ("Utrecht", "Utrecht"), ("Eindhoven", "North Brabant")], "+31", "145.53"),
    "de": ("Germany", "DE", [("Berlin", "Berlin"), ("Munich", "Bavaria"), ("Hamburg", "Hamburg")], "+49", "91.64"),
    "co.uk": ("United Kingdom", "GB", [("London", "England"), ("Manchester", "England"),
                                       ("Edinburgh", "Scotland")], "+44", "81.2"),
    "com": ("United States", "US", [("Chicago", "Illinois"), ("Austin", "Texas"), ("New York", "New York"),
                                    ("San Francisco", "California")], "+1", "170.85"),
    "fr": ("France", "FR", [("Paris", "Île-de-France"), ("Lyon", "Auvergne-Rhône-Alpes")], "+33", "90.84"),
    "se": ("Sweden", "SE", [("Stockholm", "Stockholm"), ("Gothenburg", "Västra Götaland")], "+46", "78.72"),
    "be": ("Belgium", "BE", [("Brussels", "Brussels"), ("Antwerp", "Flanders")], "+32", "81.246"),
    "es": ("Spain", "ES", [("Madrid", "Madrid"), ("Barcelona", "Catalonia")], "+34", "83.44"),
}
_INDUSTRIES = [
    "Machinery Manufacturing", "Software Development", "Logistics and Supply Chain", "Food and Beverage Services",
    "Renewable Energy", "Hospitals and Health Care", "Financial Services", "Retail", "Marketing Services",
    "IT Services and IT Consulting", "Biotechnology Research", "Truck Transportation",
]
_EMPLOYEE_RANGES = ["1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001-10,000", "10,001+"]
_ISPS = ["KPN", "Vodafone", "Deutsche Telekom", "BT", "Comcast", "Orange", "Telia", "Proximus", "Telefonica"]
_BROWSERS = [("Chrome", 55), ("Safari", 20), ("Edge", 12), ("Firefox", 10), ("Opera", 3)]
_PLATFORMS = ["Windows 10", "Intel Mac OS X 10.15.7", "iPhone OS 18_1", "Android 14", "Linux x86_64"]
_CHANNELS = [("direct", 20), ("organic", 25), ("social", 10), ("email", 20), ("referral", 12), ("paid", 13)]
_PAGES = [  # (path, title)
    ("/", f"{SITE_BRAND} – Customer analytics for B2B teams"),
    ("/pricing", f"Pricing – {SITE_BRAND}"),
    ("/product", f"Product overview – {SITE_BRAND}"),
    ("/product/integrations", f"Integrations – {SITE_BRAND}"),
    ("/product/lead-scoring", f"Lead scoring – {SITE_BRAND}"),
    ("/customers", f"Customer stories – {SITE_BRAND}"),
    ("/customers/acme-logistics", f"How Acme Logistics doubled its pipeline – {SITE_BRAND}"),
    ("/blog/b2b-intent-data", f"What is B2B intent data? – {SITE_BRAND} blog"),
    ("/blog/identify-website-visitors", f"5 ways to identify anonymous website visitors – {SITE_BRAND} blog"),
    ("/blog/crm-hygiene", f"CRM hygiene checklist – {SITE_BRAND} blog"),
    ("/resources", f"Resources – {SITE_BRAND}"),
    ("/demo", f"Book a demo – {SITE_BRAND}"),
    ("/contact", f"Contact us – {SITE_BRAND}"),
    ("/about", f"About us – {SITE_BRAND}"),
    ("/careers", f"Careers – {SITE_BRAND}"),
]
_DOWNLOADS = ["b2b-buyer-journey-2026.pdf", "lead-scoring-playbook.pdf", "pricing-sheet.pdf",
              "gdpr-whitepaper.pdf", "integration-guide.pdf"]
_FORMS = [("3", "/demo", "Demo request"), ("5", "/contact", "Contact form"), ("7", "/resources", "Whitepaper gate")]
_EMAIL_CAMPAIGNS = ["webinar-nov", "newsletter-2026-11", "black-friday-offer", "product-update-q4", "nurture-step-2"]
_UTM_BY_CHANNEL: dict[str, list[tuple[str | None, str | None, str | None]]] = {
    "direct": [(None, None, None)],
    "organic": [(None, None, None)],
    "social": [("linkedin", "social", "autumn-awareness"), ("twitter", "social", None), (None, None, None)],
    "email": [("newsletter", "email", None)],
    "referral": [(None, None, None), ("partner-g2", "referral", "g2-listing")],
    "paid": [("google", "cpc", "brand-search"), ("google", "cpc", "competitor-terms"),
             ("linkedin", "paid-social", "abm-q4"), ("bing", "cpc", "brand-search")],
}
_REFERRERS = {
    "direct": "",
    "organic": "https://www.google.com/",
    "social": "https://www.linkedin.com/",
    "email": "https://mail.google.com/",
    "referral": "https://www.g2.com/",
    "paid": "https://www.google.com/",
}


def parse_start(start: str | int | float | datetime) -> int:
    """Epoch ms of an ISO-8601 instant (naive = UTC), a datetime, or an epoch-ms number."""
    if isinstance(start, datetime):
        moment = start
    elif isinstance(start, (int, float)):
        return int(start)
    else:
        moment = datetime.fromisoformat(str(start).strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _slug(text: str) -> str:
    table = str.maketrans({"ü": "u", "é": "e", "í": "i", "ø": "o", "ë": "e", "ï": "i", "ö": "o", "á": "a",
                           "ú": "u", "ó": "o", "ñ": "n", "ç": "c", "è": "e", "à": "a", "å": "a", "ä": "a"})
    return "".join(ch for ch in text.lower().translate(table) if ch.isalnum())


def _make_companies(rng: random.Random, count: int) -> list[dict[str, str]]:
    companies: list[dict[str, str]] = []
    used: set[str] = set()
    for index in range(count):
        legal, tld = rng.choice(_CO_LEGAL)
        base = f"{rng.choice(_CO_PREFIX)} {rng.choice(_CO_CORE)}"
        slug = _slug(base)
        domain = f"{slug}.{tld}"
        if domain in used:
            slug = f"{slug}{index}"
            domain = f"{slug}.{tld}"
            base = f"{base} {index}"
        used.add(domain)
        country, code, cities, phone_prefix, ip_prefix = _LOCATIONS[tld]
        city, region = rng.choice(cities)
        name = f"{base} {legal}"
        companies.append({
            "organizationName": name,
            "organizationDomain": domain,
            "organizationCity": city,
            "organizationCountry": country,
            "organizationCountryCode": code,
            "organizationIndustryName": rng.choice(_INDUSTRIES),
            "organizationEmployeeCountRangeName": rng.choice(_EMPLOYEE_RANGES),
            "organizationPhone": f"{phone_prefix} {rng.randint(10, 99)} {rng.randint(100, 999)} "
                                 f"{rng.randint(1000, 9999)}",
            "organizationLinkedInUrl": f"https://www.linkedin.com/company/{slug}",
            "organizationLogoUrl": f"https://logo.example.net/{domain}.png",
            "_region": region,
            "_ip_prefix": ip_prefix,
            "_isp": name,
        })
    return companies


def _segments(site: str) -> list[dict[str, Any]]:
    common = {"datasetId": site, "accountId": ACCOUNT_ID, "type": "ACCOUNT", "search": "*",
              "exitLinkFilter": None, "notificationType": "NONE", "createdTimestamp": "1767225600000",
              "modifiedTimestamp": "1767225600000"}
    return [
        {"segmentId": DEFAULT_SEGMENT_ID, "name": "Qualified – push to Pipedrive", **common,
         "textFilter": None, "numberFilter": "esScore|greaterthan|19", "timeFilter": None,
         "fieldFilter": "hasanyvalue|email", "sortBy": "lastEvent", "sortOrder": "desc"},
        {"segmentId": TOP_LEADS_SEGMENT_ID, "name": "Top leads", **common,
         "textFilter": None, "numberFilter": None, "timeFilter": None,
         "fieldFilter": "hasanyvalue|organizationName", "sortBy": "_score", "sortOrder": "desc"},
        {"segmentId": WEB_VISITORS_SEGMENT_ID, "name": "Web visitors", **common,
         "textFilter": None, "numberFilter": None, "timeFilter": None,
         "fieldFilter": None, "sortBy": "lastEvent", "sortOrder": "desc"},
    ]


def _session_starts(rng: random.Random, count: int, start_ms: int, end_ms: int) -> list[int]:
    latest = max(start_ms, end_ms - 35 * MINUTE_MS)
    starts = sorted(rng.randint(start_ms, latest) for _ in range(count))
    for i in range(1, len(starts)):  # keep a lead's sessions apart (session timeout) when the span allows
        if starts[i] < starts[i - 1] + 40 * MINUTE_MS and starts[i - 1] + 40 * MINUTE_MS <= latest:
            starts[i] = starts[i - 1] + 40 * MINUTE_MS + rng.randint(0, 10 * MINUTE_MS)
    return sorted(starts)


def _url(path: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v}, quote_via=quote)
    return f"{SITE_ROOT}{path}" + (f"?{query}" if query else "")


def generate_dataset(seed: int = 7, leads: int = 200, start: str = DEFAULT_START, hours: int = 24,
                     site: str = DEFAULT_SITE) -> dict[str, Any]:
    """Build a realistic, deterministic dataset (see the module docstring for the format).

    Every random draw comes from ``rng``, in a fixed order: the companies, then each lead's skeleton,
    then the extra sessions that cover every hour, then each lead's sessions and events.
    """
    rng = random.Random(seed)
    start_ms = parse_start(start)
    hours = max(1, int(hours))
    end_ms = start_ms + hours * HOUR_MS
    n_leads = max(0, int(leads))
    companies = _make_companies(rng, max(3, int(n_leads * 0.5 / 1.8)))
    # A few companies attract most visitors, so colleagues share an organization.
    company_cum = list(accumulate(1.0 / (1 + (i % 40)) for i in range(len(companies))))
    # Phase 1: who each lead is, and when their sessions start.
    used: dict[str, set[str]] = {"emails": set(), "randoms": set()}
    skeletons = [_skeleton(rng, companies, company_cum, used, start_ms, end_ms) for _ in range(n_leads)]
    # Phase 2: every hour of the span gets events of email-identified members of the default segment.
    _cover_every_hour(rng, skeletons, start_ms, hours)
    # Phase 3: sessions, events and the lead's aggregates.
    out_leads = [_build_lead(rng, s, site) for s in skeletons]
    return {"site": site, "segments": _segments(site), "leads": out_leads}


def _skeleton(rng: random.Random, companies: list[dict[str, str]], company_cum: list[float],
              used: dict[str, set[str]], start_ms: int, end_ms: int) -> dict[str, Any]:
    """One lead before its sessions exist: identity, company, score, segment and session starts."""
    identified = rng.random() < 0.6
    has_org = rng.random() < (0.55 if identified else 0.42)
    company = rng.choices(companies, cum_weights=company_cum)[0] if has_org else None
    score = min(100, int(rng.triangular(0, 100, 55 if identified else 10)))
    in_default = (identified and score >= 20) or (not identified and rng.random() < 0.08)
    rand9 = _unique(lambda: f"{rng.randint(100_000_000, 999_999_999)}", used["randoms"])
    person = _person(rng, company, used["emails"]) if identified else {}
    n_sessions = rng.choices([1, 2, 3, 4], weights=[45, 30, 15, 10])[0]
    return {"identified": identified, "company": company, "score": score, "in_default": in_default,
            "rand9": rand9, "person": person, "starts": _session_starts(rng, n_sessions, start_ms, end_ms)}


def _unique(draw: Any, used: set[str]) -> str:
    """Draw until the value is new; remember it."""
    value = draw()
    while value in used:
        value = draw()
    used.add(value)
    return value


def _person(rng: random.Random, company: dict[str, str] | None, used_emails: set[str]) -> dict[str, str]:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    domain = company["organizationDomain"] if company else rng.choice(_FREE_MAIL)
    local = f"{_slug(first)}.{_slug(last)}"
    email = f"{local}@{domain}"
    suffix = 2
    while email in used_emails:
        email = f"{local}{suffix}@{domain}"
        suffix += 1
    used_emails.add(email)
    person = {"firstName": first, "lastName": last, "fullName": f"{first} {last}", "email": email,
              "title": rng.choice(_JOB_TITLES)}
    if rng.random() < 0.7:
        person["phoneNumber"] = f"+31 6 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    return person


def _cover_every_hour(rng: random.Random, skeletons: list[dict[str, Any]], start_ms: int, hours: int) -> None:
    """Give each hour without a session of an email-identified default-segment member one (in turns)."""
    qualified = [s for s in skeletons if s["identified"] and s["in_default"]]
    if not qualified:
        return
    covered = {(t - start_ms) // HOUR_MS for s in qualified for t in s["starts"]}
    missing = [hour for hour in range(hours) if hour not in covered]
    for turn, hour in enumerate(missing):
        skeleton = qualified[turn % len(qualified)]
        skeleton["starts"] = sorted([*skeleton["starts"], start_ms + hour * HOUR_MS + rng.randint(0, 10 * MINUTE_MS)])


class _Visitor(NamedTuple):
    """What every session and event of one lead shares."""

    use_id: str
    rand9: str
    site: str
    person: dict[str, str]
    company: dict[str, str] | None
    browser: str
    platform: str
    geo: tuple[str, str, str, str, str, str]  # country, code, city, region, ip, isp


class _Visit(NamedTuple):
    """What every event of one session shares."""

    visitor: _Visitor
    session_id: str
    channel: str
    utm: tuple[str | None, str | None, str | None]
    campaign: str | None


def _geo(rng: random.Random, company: dict[str, str] | None) -> tuple[str, str, str, str, str, str]:
    """(country, code, city, region, ip, isp): the company's, else a random location and ISP."""
    tld = company["organizationDomain"].split(".", 1)[1] if company else rng.choice(list(_LOCATIONS))
    country, code, cities, _phone, ip_prefix = _LOCATIONS[tld]
    city, region = (company["organizationCity"], company["_region"]) if company else rng.choice(cities)
    ip = f"{company['_ip_prefix'] if company else ip_prefix}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    isp = company["organizationName"] if company else rng.choice(_ISPS)
    return country, code, city, region, ip, isp


def _build_lead(rng: random.Random, sk: dict[str, Any], site: str) -> dict[str, Any]:
    company = sk["company"]
    geo = _geo(rng, company)
    visitor = _Visitor(f"{sk['starts'][0]}.{sk['rand9']}", sk["rand9"], site, sk["person"], company,
                       _weighted(rng, _BROWSERS), rng.choice(_PLATFORMS), geo)
    used_ms: set[int] = set()
    sessions = [_build_session(rng, visitor, session_ms, index == 0, used_ms)
                for index, session_ms in enumerate(sk["starts"])]
    lead: dict[str, Any] = {"use_id": visitor.use_id, "site": site, **visitor.person}
    if company:
        lead.update({k: v for k, v in company.items() if not k.startswith("_")})
        lead["last_most_likely_company"] = company["organizationName"]
    else:
        lead["last_most_likely_company"] = ""
    lead.update(_lead_aggregates(visitor, sk["score"], sessions))
    segments = [WEB_VISITORS_SEGMENT_ID]
    if company:
        segments.insert(0, TOP_LEADS_SEGMENT_ID)
    if sk["in_default"]:
        segments.insert(0, DEFAULT_SEGMENT_ID)
    lead["segments"] = segments
    lead["sessions"] = sessions
    return lead


def _build_session(rng: random.Random, visitor: _Visitor, session_ms: int, first_session: bool,
                   used_ms: set[int]) -> dict[str, Any]:
    while session_ms in used_ms:
        session_ms += 1
    channel = _weighted(rng, _CHANNELS)
    if channel == "email" and not visitor.person.get("email"):
        channel = "organic"
    utm_source, utm_medium, utm_campaign = rng.choice(_UTM_BY_CHANNEL[channel])
    campaign = rng.choice(_EMAIL_CAMPAIGNS) if channel == "email" else None
    if channel == "email":
        utm_campaign = campaign
    visit = _Visit(visitor, f"{session_ms}.{visitor.rand9}", channel, (utm_source, utm_medium, utm_campaign),
                   campaign)
    events = _build_events(rng, visit, session_ms, first_session, used_ms)
    first_ms = int(events[0]["eventUnixTimestamp"])
    duration = (int(events[-1]["eventUnixTimestamp"]) - first_ms) // 1000
    pages = sum(1 for e in events if e["event_type"] == "pageview")
    country, _code, city, _region, ip, _isp = visitor.geo
    return {
        "session_id": visit.session_id, "use_id": visitor.use_id, "site": visitor.site,
        "session_unix_timestamp": str(first_ms), "duration": str(duration), "pages_viewed": str(pages),
        "entry_root_url": events[0]["root_url"], "referrer": _REFERRERS[channel], "channel": channel,
        "utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign,
        "browser": visitor.browser, "platform": visitor.platform, "country_name": country, "city": city,
        "ip_number": ip, "events": events,
    }


def _lead_aggregates(visitor: _Visitor, score: int, sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """The lead's fields summing up its sessions (first and last of each kind, totals)."""
    first, last = sessions[0], sessions[-1]
    last_event = last["events"][-1]
    last_ms = int(last_event["eventUnixTimestamp"])
    country, code, city, region, ip, isp = visitor.geo
    return {
        "esScore": str(score),
        "lastEvent": last_ms,
        "eventEsTimestamp": str(last_ms),
        "eventUnixTimestamp": str(last_ms),
        "event_id": last_event["event_id"],
        "first_session_unix_timestamp": first["session_unix_timestamp"],
        "last_session_unix_timestamp": last["session_unix_timestamp"],
        "last_session_id": last["session_id"],
        "session_id": last["session_id"],
        "total_number_visits": len(sessions),
        "total_pages_viewed": sum(int(s["pages_viewed"]) for s in sessions),
        "total_session_duration": sum(int(s["duration"]) for s in sessions),
        "last_visit_duration": last["duration"],
        "first_channel": first["channel"], "last_channel": last["channel"],
        "first_utm_source": first["utm_source"], "first_utm_medium": first["utm_medium"],
        "first_utm_campaign": first["utm_campaign"],
        "last_utm_source": last["utm_source"], "last_utm_medium": last["utm_medium"],
        "last_utm_campaign": last["utm_campaign"],
        "entry_root_url": first["entry_root_url"],
        "last_original_url": last_event["original_url"],
        "original_referrer": first["referrer"],
        "original_referrer_domain": first["referrer"].split("/")[2] if first["referrer"] else "",
        "last_referrer": last["referrer"],
        "last_country_code": code, "last_country_name": country, "last_region_name": region, "last_city": city,
        "last_ip_number": ip, "last_isp": isp, "last_org": isp,
        "last_browser": visitor.browser, "last_platform": visitor.platform,
        "machine_id": f"{first['session_unix_timestamp']}:{first['session_unix_timestamp']}",
        "leadcard_url": f"https://app.leadboxer.com?q={visitor.use_id}&site={visitor.site}",
        "type": {"name": "user"},
        "customEventInfo": {},
        "ttl": 31_622_400_000,
        "documentExpiryDate": last_ms + 31_622_400_000,
    }


def _plan(rng: random.Random, channel: str, email: str | None, first_session: bool) -> list[str]:
    """The event types of a session, in order (1-8; an email visit opens and/or clicks first)."""
    count = rng.randint(1, 8)
    plan: list[str] = []
    if channel == "email":
        if rng.random() < 0.5:
            plan.append("email_open")
        plan.append("email_click")
    while len(plan) < count:
        roll = rng.random()
        if email and roll < 0.08:
            plan.append("form_submit")
        elif roll < 0.14:
            plan.append("download")
        elif email and roll < 0.18 and not first_session:
            plan.append("login")
        else:
            plan.append("pageview")
    if not plan or plan[0] not in ("email_open", "email_click", "pageview"):
        plan.insert(0, "pageview")
    return plan[:8]


def _build_events(rng: random.Random, visit: _Visit, session_ms: int, first_session: bool,
                  used_ms: set[int]) -> list[dict[str, Any]]:
    visitor = visit.visitor
    plan = _plan(rng, visit.channel, visitor.person.get("email"), first_session)
    events: list[dict[str, Any]] = []
    ts = session_ms
    for position, kind in enumerate(plan):
        if position:
            ts += rng.randint(5_000, 240_000)
        while ts in used_ms:
            ts += 1
        used_ms.add(ts)
        page_path, page_title = rng.choice(_PAGES)
        event: dict[str, Any] = {
            "event_id": f"{ts}.{visitor.rand9}", "session_id": visit.session_id, "use_id": visitor.use_id,
            "site": visitor.site, "eventUnixTimestamp": str(ts), "event_type": kind,
            "title": page_title, "original_url": "", "root_url": "",
            "referrer": _REFERRERS[visit.channel] if position == 0 else "",
            "utm_source": None, "utm_medium": None, "utm_campaign": None, "utm_term": None, "utm_content": None,
            "campaign": None, "properties": {},
        }
        if position and events:
            event["referrer"] = events[-1]["root_url"]
        _EVENT_DETAILS[kind](rng, event, visit, page_path, position)
        events.append(event)
    return events


def _landing_utm(visit: _Visit) -> dict[str, str | None]:
    utm_source, utm_medium, utm_campaign = visit.utm
    return {"utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign}


def _email_open(rng: random.Random, event: dict[str, Any], visit: _Visit, page_path: str, position: int) -> None:
    site, email, campaign = visit.visitor.site, visit.visitor.person.get("email"), visit.campaign
    event.update(title=f"Email open: {campaign}", campaign=campaign, email=email,
                 original_url=f"https://track.leadboxer.com/log/open?datasetId={site}&campaign={campaign}"
                              f"&email={quote(email or '')}",
                 root_url="https://track.leadboxer.com/log/open", referrer="")


def _email_click(rng: random.Random, event: dict[str, Any], visit: _Visit, page_path: str, position: int) -> None:
    person = visit.visitor.person
    params = {**_landing_utm(visit), "utm_content": rng.choice(["cta-button", "header-link", "footer-link"]),
              "email": person.get("email"), "firstName": person.get("firstName"), "lastName": person.get("lastName")}
    event.update(original_url=_url(page_path, params), root_url=f"{SITE_ROOT}{page_path}", **_landing_utm(visit),
                 utm_content=params["utm_content"], campaign=visit.campaign, email=person.get("email"))


def _pageview(rng: random.Random, event: dict[str, Any], visit: _Visit, page_path: str, position: int) -> None:
    """The landing page (position 0) carries the session's UTM parameters (and a paid search term)."""
    params = _landing_utm(visit) if position == 0 else {}
    if position == 0 and visit.utm[1] == "cpc":
        params = {**params, "utm_term": rng.choice(["visitor identification", "b2b analytics"])}
    event.update(original_url=_url(page_path, params), root_url=f"{SITE_ROOT}{page_path}")
    if position == 0:
        event.update(**_landing_utm(visit), utm_term=params.get("utm_term"))


def _form_submit(rng: random.Random, event: dict[str, Any], visit: _Visit, page_path: str, position: int) -> None:
    person, company = visit.visitor.person, visit.visitor.company
    form_id, path, form_name = rng.choice(_FORMS)
    props = {"form_id": form_id, "form_name": form_name, "email": person.get("email"),
             "first_name": person.get("firstName"), "last_name": person.get("lastName")}
    if company:
        props["companyName"] = company["organizationName"]
    if person.get("phoneNumber"):
        props["phoneNumber"] = person["phoneNumber"]
    if form_id == "5":
        props["message"] = "Could you send me a quote for 25 seats?"
    event.update(title="Form Submit", original_url=f"{SITE_ROOT}{path}", root_url=f"{SITE_ROOT}{path}",
                 email=person.get("email"), properties=props)


def _download(rng: random.Random, event: dict[str, Any], visit: _Visit, page_path: str, position: int) -> None:
    name = rng.choice(_DOWNLOADS)
    url = f"{SITE_ROOT}/resources/{name}"
    event.update(title=f"Download: {name}", original_url=url, root_url=url,
                 properties={"file_name": name, "file_type": "pdf"})


def _login(rng: random.Random, event: dict[str, Any], visit: _Visit, page_path: str, position: int) -> None:
    email = visit.visitor.person.get("email")
    url = f"{SITE_ROOT}/app/login"
    event.update(title="Login", original_url=url, root_url=url, email=email, properties={"login": email})


# event_type -> what that kind of event adds to the common event fields
_EVENT_DETAILS = {"email_open": _email_open, "email_click": _email_click, "pageview": _pageview,
                  "form_submit": _form_submit, "download": _download, "login": _login}


def synced_events(data: dict[str, Any], start_ms: int, end_ms: int,
                  segment_id: int = DEFAULT_SEGMENT_ID) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``(lead, event)`` for every event in ``[start_ms, end_ms)`` of the segment's email-identified
    leads in a generated dataset: what an activity sync of that window must push (generated data is
    clean, so all of them are valid)."""
    for lead in data["leads"]:
        if segment_id not in lead.get("segments", []) or not lead.get("email"):
            continue
        for session in lead.get("sessions", []):
            for event in session.get("events", []):
                if start_ms <= int(event["eventUnixTimestamp"]) < end_ms:
                    yield lead, event
