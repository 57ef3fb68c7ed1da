from tests.api.conftest import Network


def test_smoke(network: Network) -> None:
    api = network.api_a
    print(api.ok("GET", "/info"))
    print(api.ok("GET", "/channels"))
    print(api.ok("GET", "/health"))
    r = network.api_b.ok("POST", "/requests", {"amount": "1000", "description": "tea"}, status=201)
    print(r)
    p = api.ok("POST", "/payments", {"request": r["request"]})
    print(p)
    print(network.api_b.ok("GET", f"/requests/{r['payment_hash']}"))
    print(api.post("/payments", {"request": r["request"]}).text)
    print(api.get("/events", params={"after": 0}, timeout=2) if False else "")
