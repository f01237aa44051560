"""The product concepts a synthetic bank chooses its catalogue from.

Each line is one product idea: category, name, risk level (1..5 for R1..R5), tags, how popular it
is (a log-scale weight), a typical amount for a purchase or balance, term in months (0 = open),
minimum amount and annual fee in percent. Risk levels follow the category: cash products and
protection are R1, bond-like products R2, mixed R3, equity R4, concentrated or leveraged R5.
Names containing ``{series}`` are issued in one to three series.
"""

# ruff: noqa: E501  (a data table reads best one product per line)
from __future__ import annotations

from typing import NamedTuple


class Concept(NamedTuple):
    category: str
    name: str
    risk: int
    tags: str
    popularity: float
    amount: float
    term_months: int
    min_amount: float
    fee_pct: float
    core: bool = False


C = Concept
# fmt: off
CONCEPTS: tuple[Concept, ...] = (
    # deposits
    C("deposit", "Everyday Current Account", 1, "everyday|liquidity", 1.6, 2_500, 0, 0, 0, True),
    C("deposit", "Instant Access Savings", 1, "savings|liquidity", 1.2, 8_000, 0, 1, 0, True),
    C("deposit", "Fixed-Term Deposit 3M", 1, "savings|fixed-term|short-term", 0.6, 10_000, 3, 1_000, 0),
    C("deposit", "Fixed-Term Deposit 6M", 1, "savings|fixed-term|short-term", 0.7, 12_000, 6, 1_000, 0),
    C("deposit", "Fixed-Term Deposit 12M", 1, "savings|fixed-term", 0.9, 15_000, 12, 1_000, 0, True),
    C("deposit", "Fixed-Term Deposit 24M", 1, "savings|fixed-term|long-term", 0.4, 15_000, 24, 1_000, 0),
    C("deposit", "Fixed-Term Deposit 36M", 1, "savings|fixed-term|long-term|income", 0.2, 20_000, 36, 5_000, 0),
    C("deposit", "Young Saver Account", 1, "savings|youth|digital", 0.5, 1_500, 0, 0, 0),
    C("deposit", "Senior Saver Account", 1, "savings|senior|income", 0.5, 20_000, 0, 0, 0),
    C("deposit", "Business Current Account", 1, "business|everyday|liquidity", 0.5, 30_000, 0, 0, 0.1),
    C("deposit", "Large-Amount Certificate of Deposit", 1, "savings|premium|fixed-term", 0.1, 200_000, 12, 100_000, 0),
    C("deposit", "Green Savings Account", 1, "savings|esg|digital", 0.2, 6_000, 0, 1, 0),
    C("deposit", "Index-Linked Structured Deposit", 2, "structured|savings|equity", -0.3, 25_000, 24, 10_000, 0),
    C("deposit", "Dual-Currency Deposit", 4, "structured|fx|short-term", -0.8, 50_000, 3, 20_000, 0),
    # wealth management
    C("wealth", "Cash Management Plan", 1, "liquidity|income", 0.3, 20_000, 0, 1_000, 0.2),
    C("wealth", "Fixed Income Plus 90D {series}", 2, "income|bond|short-term", 0.3, 30_000, 3, 10_000, 0.4),
    C("wealth", "Fixed Income Plus 365D {series}", 2, "income|bond", 0.2, 40_000, 12, 10_000, 0.4),
    C("wealth", "Balanced Wealth Plan {series}", 3, "balanced|growth", 0.0, 50_000, 12, 10_000, 0.8),
    C("wealth", "Equity-Enhanced Wealth Plan {series}", 4, "equity|growth", -0.4, 60_000, 12, 50_000, 1.0),
    C("wealth", "Private Portfolio Conservative", 2, "private|premium|bond", -0.8, 500_000, 0, 300_000, 0.6),
    C("wealth", "Private Portfolio Balanced", 3, "private|premium|balanced", -0.8, 600_000, 0, 300_000, 0.8),
    C("wealth", "Private Portfolio Dynamic", 4, "private|premium|equity|growth", -1.0, 800_000, 0, 300_000, 1.0),
    C("wealth", "Discretionary Alternatives Mandate", 5, "private|premium|alternatives", -1.5, 1_000_000, 0, 1_000_000, 1.5),
    # funds
    C("fund", "Money Market Fund", 1, "liquidity|income", 0.6, 10_000, 0, 100, 0.2),
    C("fund", "Government Bond Fund", 2, "bond|income", 0.2, 8_000, 0, 100, 0.5),
    C("fund", "Corporate Bond Fund", 2, "bond|income", 0.1, 8_000, 0, 100, 0.6),
    C("fund", "Global Bond Fund", 3, "bond|global", -0.2, 8_000, 0, 100, 0.7),
    C("fund", "High-Yield Bond Fund", 3, "bond|income", -0.4, 6_000, 0, 100, 0.9),
    C("fund", "Balanced Fund", 3, "balanced", 0.3, 7_000, 0, 100, 1.0),
    C("fund", "Multi-Asset Income Fund", 3, "balanced|income", 0.0, 7_000, 0, 100, 1.0),
    C("fund", "Domestic Equity Fund", 4, "equity|growth", 0.3, 6_000, 0, 100, 1.2),
    C("fund", "Global Equity Fund", 4, "equity|global|growth", 0.3, 6_000, 0, 100, 1.2),
    C("fund", "Asia Equity Fund", 4, "equity|global|growth", -0.2, 5_000, 0, 100, 1.4),
    C("fund", "US Equity Fund", 4, "equity|global|growth", 0.0, 6_000, 0, 100, 1.3),
    C("fund", "Europe Equity Fund", 4, "equity|global", -0.4, 5_000, 0, 100, 1.3),
    C("fund", "Emerging Markets Equity Fund", 5, "equity|global|growth", -0.6, 4_000, 0, 100, 1.6),
    C("fund", "Domestic Index Fund", 4, "equity|index|digital", 0.4, 5_000, 0, 10, 0.2),
    C("fund", "World Index Fund", 4, "equity|index|global|digital", 0.5, 5_000, 0, 10, 0.2),
    C("fund", "Technology Sector Fund", 5, "equity|sector|growth", 0.0, 4_000, 0, 100, 1.5),
    C("fund", "Healthcare Sector Fund", 4, "equity|sector|health", -0.5, 4_000, 0, 100, 1.5),
    C("fund", "Clean Energy Fund", 5, "equity|sector|esg", -0.3, 4_000, 0, 100, 1.5),
    C("fund", "ESG Leaders Fund", 4, "equity|esg", 0.0, 5_000, 0, 100, 1.1),
    C("fund", "Target Date 2035 Fund", 3, "retirement|balanced", -0.2, 6_000, 0, 100, 0.8),
    C("fund", "Target Date 2050 Fund", 4, "retirement|growth", -0.3, 4_000, 0, 100, 0.8),
    C("fund", "Commodity Fund", 5, "commodities|alternatives", -1.0, 5_000, 0, 100, 1.6),
    C("fund", "Real Estate Fund", 4, "property|income", -0.6, 6_000, 0, 100, 1.3),
    C("fund", "Leveraged Index Fund", 5, "equity|leveraged|digital", -1.2, 3_000, 0, 100, 1.8),
    # insurance
    C("insurance", "Term Life Cover", 1, "protection|life|family", 0.2, 600, 240, 0, 0),
    C("insurance", "Whole Life Plan", 2, "protection|life|long-term", -0.5, 2_400, 0, 0, 0),
    C("insurance", "Health Insurance Basic", 1, "protection|health", 0.4, 900, 12, 0, 0),
    C("insurance", "Health Insurance Plus", 1, "protection|health|premium", -0.2, 2_000, 12, 0, 0),
    C("insurance", "Critical Illness Cover", 1, "protection|health", -0.1, 800, 120, 0, 0),
    C("insurance", "Travel Insurance", 1, "protection|travel|digital", 0.3, 120, 12, 0, 0),
    C("insurance", "Home Insurance", 1, "protection|home|family", 0.2, 400, 12, 0, 0),
    C("insurance", "Motor Insurance", 1, "protection|car", 0.2, 700, 12, 0, 0),
    C("insurance", "Annuity Plan", 2, "retirement|senior|income", -0.4, 50_000, 0, 10_000, 0.5),
    C("insurance", "Unit-Linked Investment Plan", 3, "protection|equity|long-term", -0.6, 12_000, 120, 1_000, 1.5),
    C("insurance", "Education Savings Plan", 2, "education|family|long-term", -0.3, 3_000, 180, 0, 0.5),
    C("insurance", "Accident Protection", 1, "protection|digital", 0.0, 150, 12, 0, 0),
    C("insurance", "Pet Insurance", 1, "protection|digital", -0.8, 250, 12, 0, 0),
    C("insurance", "Business Liability Cover", 1, "protection|business", -0.5, 1_500, 12, 0, 0),
    # loans
    C("loan", "Fixed-Rate Mortgage", 1, "mortgage|home|long-term", 0.3, 250_000, 300, 50_000, 0),
    C("loan", "Variable-Rate Mortgage", 2, "mortgage|home|long-term", -0.2, 250_000, 300, 50_000, 0),
    C("loan", "Home Equity Line", 2, "home|credit", -0.7, 60_000, 120, 10_000, 0),
    C("loan", "Personal Loan", 1, "credit", 0.5, 12_000, 48, 1_000, 0, True),
    C("loan", "Car Loan", 1, "credit|car", 0.2, 25_000, 60, 5_000, 0),
    C("loan", "Student Loan", 1, "credit|education|youth", 0.1, 15_000, 120, 1_000, 0),
    C("loan", "Green Home Improvement Loan", 1, "credit|home|esg", -0.5, 20_000, 84, 2_000, 0),
    C("loan", "Overdraft Facility", 1, "credit|everyday|liquidity", 0.4, 2_000, 0, 0, 0),
    C("loan", "Debt Consolidation Loan", 2, "credit", -0.4, 20_000, 60, 2_000, 0),
    C("loan", "Business Term Loan", 2, "business|credit", -0.2, 120_000, 60, 10_000, 0),
    C("loan", "Business Credit Line", 2, "business|credit|liquidity", -0.3, 60_000, 12, 5_000, 0.5),
    C("loan", "Securities-Backed Loan", 3, "private|premium|credit|leveraged", -1.2, 300_000, 12, 100_000, 0),
    # cards
    C("card", "Debit Card", 1, "everyday|digital", 1.4, 0, 0, 0, 0, True),
    C("card", "Classic Credit Card", 1, "credit|everyday", 1.0, 3_000, 0, 0, 0, True),
    C("card", "Gold Credit Card", 1, "credit|premium", 0.2, 10_000, 0, 0, 1.0),
    C("card", "Platinum Credit Card", 2, "credit|premium|travel", -0.3, 25_000, 0, 0, 2.0),
    C("card", "Cashback Card", 1, "credit|cashback|digital", 0.6, 4_000, 0, 0, 0),
    C("card", "Travel Rewards Card", 1, "credit|travel", 0.2, 6_000, 0, 0, 0.5),
    C("card", "Student Card", 1, "youth|education|digital", 0.3, 500, 0, 0, 0),
    C("card", "Business Card", 1, "business|credit", -0.1, 15_000, 0, 0, 0.5),
    C("card", "Virtual Card", 1, "digital|everyday", 0.4, 0, 0, 0, 0),
    C("card", "Airline Co-Brand Card", 1, "credit|travel|premium", -0.2, 8_000, 0, 0, 1.0),
    # pensions
    C("pension", "Personal Pension Conservative", 2, "retirement|tax-advantaged|bond", -0.1, 5_000, 0, 50, 0.5),
    C("pension", "Personal Pension Balanced", 3, "retirement|tax-advantaged|balanced", 0.0, 5_000, 0, 50, 0.7),
    C("pension", "Personal Pension Growth", 4, "retirement|tax-advantaged|growth", -0.3, 5_000, 0, 50, 0.8),
    C("pension", "Tax-Free Savings Plan", 2, "savings|tax-advantaged", 0.0, 4_000, 0, 50, 0.3),
    # precious metals and currencies
    C("precious_metal", "Gold Savings Account", 3, "gold|commodities", -0.3, 8_000, 0, 100, 0.5),
    C("precious_metal", "Physical Gold Bars", 3, "gold|commodities|premium", -1.0, 30_000, 0, 5_000, 0.3),
    C("precious_metal", "Silver Savings Account", 4, "commodities", -1.2, 4_000, 0, 100, 0.6),
    C("fx", "Multi-Currency Account", 2, "fx|travel|global", -0.2, 6_000, 0, 0, 0.2),
    C("fx", "FX Forward Contract", 5, "fx|leveraged|business", -1.3, 80_000, 6, 10_000, 0.1),
)
# fmt: on

INVESTMENT_CATEGORIES = frozenset({"wealth", "fund", "pension", "precious_metal", "fx"})
