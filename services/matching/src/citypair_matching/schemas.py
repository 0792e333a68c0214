from pydantic import BaseModel


class PartnerOut(BaseModel):
    city_id: str
    name: str
    country_code: str
    score: float
    gain_to_city: float
    gain_to_partner: float


class PartnersOut(BaseModel):
    city_id: str
    weights_version: str
    items: list[PartnerOut]
