"""Shared vocabularies: the Belt and Road corridors and the digital-economy indicators."""

from enum import StrEnum

# The six land economic corridors and the 21st-Century Maritime Silk Road, as named in
# "Vision and Actions on Jointly Building Silk Road Economic Belt and 21st-Century Maritime
# Silk Road" (NDRC, MFA, MOFCOM, March 2015).
CORRIDORS: dict[str, str] = {
    "new_eurasian_land_bridge": "New Eurasian Land Bridge",
    "china_mongolia_russia": "China–Mongolia–Russia",
    "china_central_asia_west_asia": "China–Central Asia–West Asia",
    "china_indochina_peninsula": "China–Indochina Peninsula",
    "china_pakistan": "China–Pakistan",
    "bangladesh_china_india_myanmar": "Bangladesh–China–India–Myanmar",
    "maritime_silk_road": "21st-Century Maritime Silk Road",
}
Corridor = StrEnum("Corridor", {c: c for c in CORRIDORS})

# Digital-economy indicators a profile may carry: key -> (label, unit, lowest, highest).
INDICATORS: dict[str, tuple[str, str, float, float]] = {
    "fixed_broadband_per_100": ("Fixed broadband subscriptions per 100 people", "per 100 people", 0, 200),
    "mobile_broadband_per_100": ("Mobile broadband subscriptions per 100 people", "per 100 people", 0, 400),
    "internet_users_pct": ("Internet users", "% of population", 0, 100),
    "ecommerce_retail_share_pct": ("E-commerce share of retail", "% of retail sales", 0, 100),
    "ict_gdp_share_pct": ("ICT share of GDP", "% of GDP", 0, 100),
    "digital_skills_index": ("Digital skills index", "index 0–100", 0, 100),
}
