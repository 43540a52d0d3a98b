"""The financial product catalogue: the 21 insurance products of the Caravan (CoIL 2000) data plus
caravan insurance itself. Product ids are what ``user-events`` and ``recommendations`` carry;
the column names tie them to the training data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    count_column: str  # number of policies (A*) in ISLR/Caravan
    contribution_column: str  # contribution level (P*) in ISLR/Caravan
    line: str  # business line, a content attribute


CATALOGUE: tuple[Product, ...] = (
    Product("private_liability", "Private third-party liability", "AWAPART", "PWAPART", "liability"),
    Product("firm_liability", "Third-party liability (firms)", "AWABEDR", "PWABEDR", "liability"),
    Product("agri_liability", "Third-party liability (agriculture)", "AWALAND", "PWALAND", "liability"),
    Product("car", "Car policy", "APERSAUT", "PPERSAUT", "vehicle"),
    Product("delivery_van", "Delivery van policy", "ABESAUT", "PBESAUT", "vehicle"),
    Product("motorcycle", "Motorcycle/scooter policy", "AMOTSCO", "PMOTSCO", "vehicle"),
    Product("lorry", "Lorry policy", "AVRAAUT", "PVRAAUT", "vehicle"),
    Product("trailer", "Trailer policy", "AAANHANG", "PAANHANG", "vehicle"),
    Product("tractor", "Tractor policy", "ATRACTOR", "PTRACTOR", "vehicle"),
    Product("agri_machines", "Agricultural machines policy", "AWERKT", "PWERKT", "vehicle"),
    Product("moped", "Moped policy", "ABROM", "PBROM", "vehicle"),
    Product("life", "Life insurance", "ALEVEN", "PLEVEN", "life"),
    Product("private_accident", "Private accident insurance", "APERSONG", "PPERSONG", "life"),
    Product("family_accident", "Family accidents insurance", "AGEZONG", "PGEZONG", "life"),
    Product("disability", "Disability insurance", "AWAOREG", "PWAOREG", "life"),
    Product("fire", "Fire policy", "ABRAND", "PBRAND", "property"),
    Product("surfboard", "Surfboard policy", "AZEILPL", "PZEILPL", "leisure"),
    Product("boat", "Boat policy", "APLEZIER", "PPLEZIER", "leisure"),
    Product("bicycle", "Bicycle policy", "AFIETS", "PFIETS", "leisure"),
    Product("property", "Property insurance", "AINBOED", "PINBOED", "property"),
    Product("social_security", "Social security insurance", "ABYSTAND", "PBYSTAND", "life"),
    Product("caravan", "Mobile home (caravan) policy", "Purchase", "Purchase", "leisure"),
)

PRODUCT_IDS: tuple[str, ...] = tuple(p.product_id for p in CATALOGUE)
PRODUCT_INDEX: dict[str, int] = {p: i for i, p in enumerate(PRODUCT_IDS)}
BY_ID: dict[str, Product] = {p.product_id: p for p in CATALOGUE}
LINES: tuple[str, ...] = tuple(sorted({p.line for p in CATALOGUE}))

# The 43 socio-demographic attributes of ISLR/Caravan (zip-code level), in data order.
CUSTOMER_ATTRIBUTES: tuple[str, ...] = (
    "MOSTYPE",
    "MAANTHUI",
    "MGEMOMV",
    "MGEMLEEF",
    "MOSHOOFD",
    "MGODRK",
    "MGODPR",
    "MGODOV",
    "MGODGE",
    "MRELGE",
    "MRELSA",
    "MRELOV",
    "MFALLEEN",
    "MFGEKIND",
    "MFWEKIND",
    "MOPLHOOG",
    "MOPLMIDD",
    "MOPLLAAG",
    "MBERHOOG",
    "MBERZELF",
    "MBERBOER",
    "MBERMIDD",
    "MBERARBG",
    "MBERARBO",
    "MSKA",
    "MSKB1",
    "MSKB2",
    "MSKC",
    "MSKD",
    "MHHUUR",
    "MHKOOP",
    "MAUT1",
    "MAUT2",
    "MAUT0",
    "MZFONDS",
    "MZPART",
    "MINKM30",
    "MINK3045",
    "MINK4575",
    "MINK7512",
    "MINK123M",
    "MINKGEM",
    "MKOOPKLA",
)
