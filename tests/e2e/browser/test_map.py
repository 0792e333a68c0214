"""The map in a real browser: zoom and pan, groups that split, filters, the city card with its partnerships, the
list that shows the same cities, nothing fetched from outside; and how fast the page and its data come."""

import statistics
from urllib.parse import urlparse

import pytest

from citypair_web.graphics import HEIGHT, WIDTH
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, city_body, eventually

pytestmark = pytest.mark.browser

HUB = city_body("Maphub", country_code="KZ", latitude=43.25, longitude=76.9, corridors=["china_central_asia_west_asia"])
PARTNERS = [
    city_body("Mappartner Tashkent", country_code="UZ", latitude=41.3, longitude=69.25),
    city_body("Mappartner Lanzhou", country_code="CN", latitude=36.06, longitude=103.83),
]
# Forty cities within a degree of Bangkok: one group on the whole world; every other one offers telemedicine at 4.
DENSE = [
    city_body(
        f"Densecity {i:02d}",
        country_code="TH",
        latitude=13.2 + (i % 8) * 0.13,
        longitude=100.0 + (i // 8) * 0.2,
        themes={"telemedicine": {"offer": 4 if i % 2 == 0 else 1, "need": 0}},
        corridors=["china_indochina_peninsula"],
    )
    for i in range(40)
]
SCATTERED = [
    city_body(f"Far {code}", country_code=code, latitude=lat, longitude=lon)
    for code, lat, lon in [("EG", 30.04, 31.24), ("IT", 41.9, 12.5), ("PK", 33.7, 73.05), ("TR", 41.0, 28.98)]
]
TWINS = (
    "city1,country1,lat1,lng1,city2,country2,lat2,lng2\n"
    "Maphub,Kazakhstan,43.25,76.9,Mappartner Tashkent,Uzbekistan,41.3,69.25\n"
    "Maphub,Kazakhstan,43.25,76.9,Mappartner Lanzhou,China,36.06,103.83\n"
)


@pytest.fixture(scope="module")
def places(stack, admin):
    """The cities above, imported and published, with two partnerships; name -> id."""
    rows = [HUB, *PARTNERS, *DENSE, *SCATTERED, city_body("Mapdraft", country_code="KZ", draft=True)]
    report = admin.post("/api/v1/cities/import", json=rows, timeout=120).json()
    assert report["accepted"] == len(rows), report
    twins = admin.post(
        "/api/v1/cities/partnerships/import", content=TWINS, headers={"Content-Type": "text/csv"}, timeout=60
    ).json()
    assert twins["created"] == 2, twins
    return {row["name"]: line["id"] for row, line in zip(rows, report["rows"], strict=True)}


@pytest.fixture(scope="module")
def context(stack, browser):
    """A signed-in admin's browser; every request any page makes is recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.requested = []
    context.on("request", lambda request: context.requested.append(request.url))
    page = context.new_page()
    page.goto(stack.config.gateway_url + "/?lang=en")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("form[action='/sign-in'] button[type=submit]")
    page.wait_for_url(stack.config.gateway_url + "/")
    page.close()
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    assert not page.errors, page.errors
    page.close()


def open_map(page, stack, query: str = ""):
    page.goto(f"{stack.config.gateway_url}/map{query}")
    page.wait_for_selector("#map-view[data-ready=true]")
    return page.locator("#map-view")


def until(page, condition: str) -> None:
    """Wait until `condition` holds of the map's state (`d`, its data attributes); polled from here, as the page's
    CSP refuses the eval of Playwright's own waiting."""
    expression = f"(d => {condition})(document.getElementById('map-view').dataset)"
    eventually(lambda: page.evaluate(expression), timeout=10, what=condition)


def data(view, name: str) -> str:
    return view.get_attribute(f"data-{name}")


def on_screen(view, lon: float, lat: float) -> tuple[float, float]:
    """Where a place is drawn: the map's projection (equirectangular) at its zoom and centre."""
    box = view.locator("canvas").bounding_box()
    zoom = float(data(view, "zoom"))
    centre_lon, centre_lat = map(float, data(view, "centre").split(","))
    scale = box["width"] / WIDTH * zoom
    dx = (lon - centre_lon) / 360 * WIDTH * scale
    dy = (centre_lat - lat) / 180 * HEIGHT * scale
    return box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy


def test_points_need_a_signed_in_user_and_hold_published_cities_only(stack, admin, anonymous, places):
    assert anonymous.get("/api/v1/cities/points").status_code == 401
    response = admin.get("/api/v1/cities/points", params={"limit": 5000})
    assert response.status_code == 200
    found = {c["id"]: c for c in response.json()["items"]}
    assert places["Mapdraft"] not in found and response.json()["total"] == len(found)
    hub = found[places["Maphub"]]
    assert hub["offers"] == {"ai": 5, "ecommerce": 1} and hub["needs"] == {"ai": 1, "ecommerce": 4}
    assert hub["corridors"] == ["china_central_asia_west_asia"]
    assert sorted(hub["partner_ids"]) == sorted([places["Mappartner Tashkent"], places["Mappartner Lanzhou"]])
    assert admin.get("/api/v1/cities/points", params={"limit": 5001}).status_code == 422
    # Unchanged: 304 for the ETag; any change to any city (a draft's too) makes a new one.
    tag = response.headers["etag"]
    assert admin.get("/api/v1/cities/points", headers={"If-None-Match": tag}).status_code == 304
    draft = places["Mapdraft"]
    assert admin.patch(f"/api/v1/cities/{draft}", json={"population": 12345}).status_code == 200
    again = admin.get("/api/v1/cities/points", headers={"If-None-Match": tag})
    assert again.status_code == 200 and again.headers["etag"] != tag


def test_the_map_data_is_for_signed_in_users(stack, anonymous, context, places):
    response = anonymous.get("/map/cities.json", follow_redirects=False)
    assert response.status_code == 303 and "json" not in response.headers.get("content-type", "")
    assert anonymous.get("/map/list", follow_redirects=False).status_code == 303
    assert anonymous.get("/map/land.json").json()["path"].startswith("M")  # public-domain outline, for everyone
    answer = context.request.get(stack.config.gateway_url + "/map/cities.json")
    assert answer.ok and {c["name"] for c in answer.json()["cities"]} >= {"Maphub", "Densecity 00"}
    # The browser revalidates its copy: the same ETag is a 304.
    again = context.request.get(
        stack.config.gateway_url + "/map/cities.json", headers={"If-None-Match": answer.headers["etag"]}
    )
    assert again.status == 304


def test_buttons_and_keys_zoom_and_pan(stack, page, places, shoot):
    view = open_map(page, stack)
    assert data(view, "zoom") == "1.00" and data(view, "total") == str(len(places) - 1)
    shoot(page, "en-map-world")
    page.click("#map-zoom-in")
    until(page, "d.zoom === '2.00'")
    view.focus()
    page.keyboard.press("+")
    until(page, "d.zoom === '4.00'")
    before = data(view, "centre")
    page.keyboard.press("ArrowRight")
    until(page, f"d.centre !== '{before}'")
    assert float(data(view, "centre").split(",")[0]) > float(before.split(",")[0])
    page.keyboard.press("-")
    until(page, "d.zoom === '2.00'")
    page.click("#map-zoom-out")
    until(page, "d.zoom === '1.00'")
    # The map is one tab stop, whatever the number of cities: Tab from it leaves it.
    view.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") != "map-view"
    assert page.evaluate("document.activeElement.closest('#map-view')") is None


def test_a_canvas_out_of_layout_for_a_moment_keeps_the_map_usable(stack, page, places):
    """A full-page screenshot or a hidden panel gives the canvas a 0 × 0 size for a moment; zooming then must not
    turn the centre into NaN for good (a CI run once saw exactly that)."""
    view = open_map(page, stack)
    canvas = "document.querySelector('#map-view canvas')"
    page.evaluate(f"{canvas}.style.display = 'none'")
    page.wait_for_timeout(100)  # the ResizeObserver reports the 0 × 0 size
    page.click("#map-zoom-in")
    view.focus()
    page.keyboard.press("ArrowRight")
    page.evaluate(f"{canvas}.style.display = ''")
    until(page, "d.zoom === '2.00'")
    before = data(view, "centre")
    assert "NaN" not in before
    page.keyboard.press("ArrowRight")
    until(page, f"d.centre !== '{before}'")
    assert "NaN" not in data(view, "centre")


def test_filtering_by_a_theme_reduces_the_points_and_the_list_shows_the_same(stack, page, places):
    view = open_map(page, stack)
    everything = int(data(view, "shown"))
    page.select_option("#map-offers", "telemedicine")
    page.select_option("#map-level", "4")
    until(page, "d.shown === '20'")
    assert everything > 20
    page.fill("#map-country", "TH")
    page.select_option("#map-corridor", "china_indochina_peninsula")
    assert data(view, "shown") == "20"
    page.fill("#map-country", "KZ")
    until(page, "d.shown === '0'")
    page.fill("#map-country", "TH")
    until(page, "d.shown === '20'")
    # The list, reached from the map, takes the same filters: the same twenty cities.
    page.click("#map-filters button[type=submit]")
    page.wait_for_url("**/map/list?**")
    names = page.locator("#map-list tbody tr td:first-child").all_inner_texts()
    expected = {f"Densecity {i:02d}" for i in range(0, 40, 2)}
    assert set(names) == expected and "20" in page.locator("#map-list-total").inner_text()
    assert page.locator("#map-offers").input_value() == "telemedicine"
    # A filter the list cannot read is named next to its field.
    wrong = page.goto(stack.config.gateway_url + "/map/list?country=T1&offers=telemedicine")
    assert wrong.status == 422 and page.locator("#map-country ~ .field-error").count() == 1
    page.go_back()
    # And back: the map opens with them.
    page.click("#map-back")
    page.wait_for_selector("#map-view[data-ready=true]")
    assert data(page.locator("#map-view"), "shown") == "20"


def test_a_dense_place_is_one_group_that_splits_as_it_is_zoomed_into(stack, page, places):
    view = open_map(page, stack, "?country=TH")
    assert data(view, "shown") == "40" and data(view, "marks") == "1" and data(view, "clusters") == "1"
    lon = statistics.mean(c["longitude"] for c in DENSE)
    lat = statistics.mean(c["latitude"] for c in DENSE)
    page.mouse.click(*on_screen(view, lon, lat))  # activating a group zooms in on it
    until(page, "Number(d.zoom) > 1")
    until(page, "Number(d.marks) > 1")
    parted, zoom = int(data(view, "marks")), float(data(view, "zoom"))
    page.keyboard.press("-")  # and they gather again as the map zooms out
    until(page, f"Number(d.zoom) < {zoom}")
    assert int(data(view, "marks")) <= parted
    page.keyboard.press("0")
    until(page, "d.marks === '1'")


def test_choosing_a_city_shows_its_card_and_its_partnerships(stack, page, places, shoot):
    hub = places["Maphub"]
    view = open_map(page, stack, f"?city={hub}")
    card = page.locator("#map-card")
    assert card.locator("h2").inner_text() == "Maphub"
    until(page, f"d.selected === '{hub}' && d.links === '2'")
    text = card.inner_text()
    assert "Partnerships (2)" in text and "Mappartner Tashkent (UZ)" in text and "Mappartner Lanzhou (CN)" in text
    assert "Artificial intelligence (5)" in text
    assert card.locator(f"a[href='/cities/{hub}']").count() == 1
    assert card.locator(f"a[href='/cities/{hub}/partners']").count() == 1
    shoot(page, "en-map")
    # Escape closes it; a click on the city (centred) and Enter on the centre open it again.
    view.focus()
    page.keyboard.press("Escape")
    until(page, "d.selected === '' && d.links === '0'")  # the links are counted when the next frame is drawn
    assert "Maphub" not in card.inner_text()
    page.mouse.click(*on_screen(view, HUB["longitude"], HUB["latitude"]))
    until(page, f"d.selected === '{hub}'")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    until(page, f"d.selected === '{hub}'")
    # A partner chosen from the card: its card, its partnership drawn.
    card.get_by_role("button", name="Mappartner Tashkent (UZ)").click()
    until(page, f"d.selected === '{places['Mappartner Tashkent']}' && d.links === '1'")
    assert card.locator("h2").inner_text() == "Mappartner Tashkent"


def test_the_map_in_chinese(stack, page, places, shoot):
    open_map(page, stack, f"?city={places['Maphub']}&lang=zh")
    assert "合作关系 (2)" in page.locator("#map-card").inner_text()
    assert page.locator("#map-view").get_attribute("aria-label") == "城市世界地图"
    shoot(page, "zh-map")
    page.goto(stack.config.gateway_url + "/map?lang=en")


def test_no_request_leaves_this_machine(context):
    assert context.requested, "the tests above made requests"
    hosts = {urlparse(url).hostname for url in context.requested if not url.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, hosts


def test_page_and_data_times(stack, page, places):
    """Navigation Timing of /map and Resource Timing of its cities.json, median of 5 (printed); tests/bench/map.py
    measures the same with 25,000 cities."""
    base, pages, data_times = stack.config.gateway_url, [], []
    for _ in range(5):
        open_map(page, stack)
        pages.append(page.evaluate("performance.getEntriesByType('navigation')[0].duration"))
        data_times.append(page.evaluate(f"performance.getEntriesByName('{base}/map/cities.json')[0].duration"))
    count = int(data(page.locator("#map-view"), "total"))
    print(
        f"/map with {count} cities: page median {statistics.median(pages):.0f} ms {sorted(pages)}; "
        f"cities.json median {statistics.median(data_times):.0f} ms {sorted(data_times)}"
    )
    assert statistics.median(pages) <= 300
