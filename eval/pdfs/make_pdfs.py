"""Generate the PDF development corpus: eval/pdfs/articles/*.pdf, for eval/pdf-qa.jsonl.

Five multi-page documents of the kinds people drop into a folder: a utility's annual report,
an appliance manual, a city walking guide, an engineering inspection report and a library
handbook. The organisations, places and figures are invented (so no model knows the answers
beforehand and no other corpus holds them) but each document is internally consistent. Each
section starts where the layout puts it; sections flagged ``new_page`` start a page, so the
page that holds each fact is fixed and eval/pdf-qa.jsonl can name it.

fpdf2 is needed only to regenerate the files, not to use them::

    pip install fpdf2
    python eval/pdfs/make_pdfs.py            # rewrites eval/pdfs/articles/
    python -m eval.check_sets eval/pdf-qa.jsonl

The output is byte-for-byte reproducible (fixed creation date, no random ids).
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parent / "articles"
CREATED = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Section:
    """A heading and its paragraphs; ``new_page`` starts it on a fresh page."""

    heading: str
    paragraphs: tuple[str, ...]
    new_page: bool = True


@dataclass(frozen=True)
class Doc:
    """One PDF: file name, title (also the PDF metadata title), subtitle, sections."""

    name: str
    title: str
    subtitle: str
    sections: tuple[Section, ...] = field(default_factory=tuple)


WATER = Doc(
    "water-quality-report-2023.pdf",
    "Larkspur Valley Water Authority",
    "Annual Water Quality Report 2023",
    (
        Section(
            "About this report",
            (
                (
                    "Every year the Larkspur Valley Water Authority publishes this report so that customers know where their drinking water "
                    "comes from, how it is treated and what our laboratory found when it tested it. The report covers the calendar year 2023."
                ),
                (
                    "The Authority was founded in 1952 and today supplies drinking water to about 84,000 residents in Larkspur and the "
                    "neighbouring towns of Millbrook and Eastvale. It is a public body governed by a board of seven elected directors."
                ),
            ),
        ),
        Section(
            "Where your water comes from",
            (
                (
                    "In 2023, 62 percent of our water came from the Cedar Lake reservoir, which collects rain and snowmelt from a protected "
                    "forest catchment of 140 square kilometres. The remaining 38 percent was pumped from three groundwater wells north of "
                    "Millbrook, which are used mostly in late summer when the reservoir level is low."
                ),
                (
                    "All water is treated at the Harlow Street Treatment Plant, which can treat up to 45 million litres a day. Average demand "
                    "in 2023 was 27 million litres a day, with a peak of 41 million litres on 18 July."
                ),
            ),
            new_page=False,
        ),
        Section(
            "How we treat your water",
            (
                (
                    "Treatment starts with coagulation: aluminium sulphate is added so that fine particles clump together into flocs. The flocs "
                    "settle out in four sedimentation basins, and the water then passes through filters of sand and anthracite coal."
                ),
                (
                    "Since 2019 the filtered water has been disinfected with ultraviolet light, which inactivates parasites such as "
                    "Cryptosporidium that resist chlorine. A small amount of chlorine is still added so that the water stays safe in the pipes; "
                    "our target is a chlorine residual of 0.5 milligrams per litre at the customer's tap."
                ),
                "Fluoride is adjusted to 0.7 milligrams per litre, the level recommended by the national health agency to prevent tooth decay.",
            ),
        ),
        Section(
            "What we found in 2023",
            (
                (
                    "Our laboratory and an independent certified laboratory tested 4,112 samples during the year, from the reservoir, the wells, "
                    "the treatment plant and 96 sampling points across the distribution network."
                ),
                (
                    "Lead: the 90th percentile of the 120 homes tested was 3.1 micrograms per litre, well below the action level of 15 micrograms "
                    "per litre. Nitrate: the average was 2.4 milligrams per litre against a legal limit of 10. Turbidity after filtration averaged "
                    "0.08 NTU."
                ),
                (
                    "Total coliform bacteria were detected in 2 of the 1,460 routine samples taken from the distribution network. Both sites were "
                    "resampled within 24 hours and the repeat samples were negative. No E. coli was found in any sample."
                ),
            ),
        ),
        Section(
            "Replacing lead service lines",
            (
                (
                    "A service line is the pipe that connects a building to the water main. At the start of 2023, 1,930 homes in our area were "
                    "still connected by a lead service line. During the year crews replaced 412 of them, more than in any previous year."
                ),
                (
                    "Replacing a line costs the Authority about 7,800 dollars on average, and the homeowner pays nothing. Our goal is to replace "
                    "every remaining lead service line by 2031. Customers can check whether their home has a lead line with the address search on "
                    "our website."
                ),
            ),
        ),
        Section(
            "Conservation and contact",
            (
                (
                    "Summer watering restrictions apply from 1 June to 15 September: homes with an even house number may water gardens on even "
                    "dates, and homes with an odd number on odd dates. Customers who replace an old toilet with a low-flow model receive a rebate "
                    "of 75 dollars."
                ),
                (
                    "The board of directors meets on the second Tuesday of each month at 6:30 pm in the Council Chambers of Larkspur Town Hall, "
                    "and the meetings are open to the public. Customer service answers the phone from Monday to Friday, 8 am to 5 pm."
                ),
            ),
            new_page=False,
        ),
    ),
)

ESPRESSO = Doc(
    "aurora-k2-manual.pdf",
    "Aurora K2 Espresso Machine",
    "User Manual",
    (
        Section(
            "Safety instructions",
            (
                (
                    "Read this manual before using the machine and keep it for later reference. The Aurora K2 is designed for household use only. "
                    "It must be connected to a 230 volt earthed socket; its power consumption is 1450 watts."
                ),
                (
                    "Never immerse the machine, the power cord or the plug in water. Use only fresh, cold drinking water in the tank; do not use "
                    "sparkling water, milk or other liquids. Parts of the machine, including the steam wand, become hot during use."
                ),
            ),
        ),
        Section(
            "What is in the box",
            (
                (
                    "The box contains the machine, a portafilter, two filter baskets (a single basket for 9 grams of coffee and a double basket "
                    "for 18 grams), a blind basket for cleaning, a tamper, a water filter cartridge and one sachet of descaler."
                ),
            ),
            new_page=False,
        ),
        Section(
            "Before first use",
            (
                (
                    "Remove the water tank, rinse it and fill it with fresh water up to the MAX mark; the tank holds 1.8 litres. Soak the water "
                    "filter cartridge in water for 10 minutes and push it onto the outlet inside the tank."
                ),
                (
                    "Switch the machine on with the power button. The K2 heats water in a thermoblock rather than a boiler, so it is ready after "
                    "about 25 seconds, when the cup lights stop flashing. On first use, prime the pump: place a jug under the group head and run "
                    "hot water through it for 30 seconds."
                ),
            ),
        ),
        Section(
            "Brewing espresso",
            (
                (
                    "Grind the coffee fine, to about the texture of table salt. For a double espresso, put 18 grams of ground coffee in the double "
                    "basket, level it and tamp it firmly and evenly with a pressure of about 15 kilograms."
                ),
                (
                    "Lock the portafilter into the group head and press the two-cup button. The pump brews at 9 bar. A good double espresso yields "
                    "about 36 grams of coffee in 25 to 30 seconds; if it runs faster, grind finer, and if it runs slower, grind coarser."
                ),
                (
                    "To program the volume, hold the cup button for 5 seconds until it flashes, release it, and press it again when the cup holds "
                    "the amount you want. The machine remembers the new volume."
                ),
            ),
        ),
        Section(
            "Frothing milk",
            (
                (
                    "Purge the steam wand for two seconds to release condensed water, then turn the steam dial. Hold the tip just below the surface "
                    "of cold milk to draw in air, then lower the jug to heat the milk. Stop when the milk reaches 60 to 65 degrees Celsius; hotter "
                    "milk loses its sweetness. Wipe the wand with a damp cloth and purge it again straight after use."
                ),
            ),
        ),
        Section(
            "Cleaning and descaling",
            (
                (
                    "Once a week, backflush the group head: fit the blind basket, add half a teaspoon of espresso machine cleaner, brew for 10 "
                    "seconds, pause for 10 seconds and repeat five times, then rinse with clean water."
                ),
                (
                    "Descale the machine every 3 months, or sooner when the orange descaling light blinks. Dissolve one sachet of descaler in 1 "
                    "litre of water in the tank and hold the steam and two-cup buttons together for 3 seconds to start the program. The descaling "
                    "cycle takes about 20 minutes and ends with two rinse cycles."
                ),
            ),
            new_page=False,
        ),
        Section(
            "Troubleshooting",
            (
                "E1: the water tank is empty or not seated properly. Refill the tank and push it firmly into place.",
                "E3: the thermoblock has overheated. Switch the machine off and let it cool for 30 minutes before switching it on again.",
                "E5: the pump cannot draw water, usually because of scale. Run the descaling program; if the code returns, contact service.",
                "Coffee drips slowly or not at all: the grind is too fine or the coffee is tamped too hard.",
            ),
        ),
        Section(
            "Warranty",
            (
                (
                    "The Aurora K2 comes with a 2-year warranty from the date of purchase. If you register the machine on our website within 30 "
                    "days of purchase, the warranty is extended to 3 years. The warranty does not cover damage caused by scale, so descale the "
                    "machine regularly."
                ),
            ),
            new_page=False,
        ),
    ),
)

BRENNHAVEN = Doc(
    "brennhaven-walking-guide.pdf",
    "Visiting Brennhaven",
    "A Walking Guide to the Old Town",
    (
        Section(
            "Welcome to Brennhaven",
            (
                (
                    "Brennhaven is a port town of 38,500 people on the northern coast. It grew up around a herring market that was granted its "
                    "charter in 1284, and for three centuries salted herring from Brennhaven was traded across the Baltic."
                ),
                (
                    "The old town has been closed to cars since 1997, and almost everything in this guide is within a twenty-minute walk of the "
                    "railway station. The walk described here takes about two and a half hours with stops."
                ),
            ),
        ),
        Section(
            "The walk: Market Square to the harbour",
            (
                (
                    "Start in Market Square at the Salt Weighhouse, built in 1562, where salt and herring were weighed and taxed. Today it houses "
                    "the tourist office, which sells a map of the walk and the Brennhaven Card."
                ),
                (
                    "From the square, follow Kirkegade to St. Olaf's Church. Its tower is 74 metres high, and the 312 steps to the viewing gallery "
                    "are open to visitors from April to October. On a clear day you can see the island of Skarholm."
                ),
                (
                    "Walk down Tanners' Lane to the harbour. On the quay stands the Harbour Crane, a wooden treadwheel crane from 1617 that was "
                    "turned by men walking inside its two wheels. It is one of the last of its kind in northern Europe."
                ),
            ),
        ),
        Section(
            "Museums",
            (
                (
                    "The Maritime Museum on the quay tells the story of the herring fleet and shows the restored sailing ship Margarethe. It is "
                    "open Tuesday to Sunday and closed on Mondays. Admission is 9 euros, and entry is free on the first Sunday of every month."
                ),
                (
                    "The Ropewalk Museum occupies a building 280 metres long, where ropes for the fleet were made by hand until 1931. Demonstrations "
                    "of rope making take place on Saturday afternoons."
                ),
            ),
        ),
        Section(
            "Eating in Brennhaven",
            (
                (
                    "The local speciality is smoked herring on rye bread with mustard sauce, served in most harbour cafes. Every Thursday morning a "
                    "fish market is held on the quay in front of the Maritime Museum."
                ),
            ),
            new_page=False,
        ),
        Section(
            "Getting around and events",
            (
                (
                    "A ferry to the island of Skarholm leaves from Pier 3 every two hours; the crossing takes 40 minutes. Bicycles can be hired at "
                    "the railway station, and cycling is allowed in the old town at walking pace."
                ),
                "The Lantern Festival, when the harbour is lit by thousands of paper lanterns, takes place on the last weekend of August.",
            ),
        ),
    ),
)

BRIDGE = Doc(
    "orsa-footbridge-inspection.pdf",
    "Orsa River Footbridge",
    "Principal Inspection Report",
    (
        Section(
            "Summary",
            (
                (
                    "This report presents the results of the principal inspection of the Orsa River Footbridge, carried out from 14 to 16 March "
                    "2024 by the engineering firm Halden & Voss on behalf of the municipal roads department."
                ),
                (
                    "The footbridge is a steel truss bridge built in 1978. It has a single span of 46 metres and a deck 3.2 metres wide, and it "
                    "carries pedestrians and cyclists between the railway station and the riverside park."
                ),
                (
                    "Overall condition rating: 3 on a scale of 1 (very good) to 5 (very poor), which corresponds to fair. The bridge is safe for "
                    "pedestrian use, but repairs are needed to prevent further deterioration."
                ),
            ),
        ),
        Section(
            "Inspection method",
            (
                (
                    "All parts of the structure were inspected at close range. The underside and the bearings were reached by a rope-access team "
                    "and from a boat. Steel thickness was measured ultrasonically at 64 points chosen where corrosion was most likely."
                ),
                "No load test was carried out. Previous inspection reports from 2012 and 2018 were used for comparison.",
            ),
        ),
        Section(
            "Findings",
            (
                (
                    "Corrosion: the lower chord of the truss shows corrosion near the east abutment, with a loss of steel section of up to 18 "
                    "percent. Elsewhere the section loss is below 5 percent. The protective paint system, last renewed in 2006, has failed on about "
                    "a third of the steel surface."
                ),
                (
                    "Deck: the deck consists of 22 precast concrete panels. Two panels have through-cracks and must be replaced; the others are in "
                    "good condition."
                ),
                "Bearings: both bearings at the west abutment are seized and no longer allow the bridge to expand and contract with temperature.",
                "Parapets: the handrail height of 1.05 metres is below the 1.10 metres now required for bridges used by cyclists.",
            ),
        ),
        Section(
            "Recommendations",
            (
                "1. Until the repairs are complete, cyclists should dismount and walk across the bridge.",
                "2. Replace the two cracked deck panels within 6 months.",
                "3. Replace the seized west bearings.",
                "4. Blast-clean and repaint the entire steel structure, and strengthen the east end of the lower chord with bolted plates.",
                "5. Raise the parapets to 1.10 metres.",
                "The total cost of the recommended works is estimated at 1.2 million euros.",
            ),
        ),
        Section(
            "Next steps",
            (
                (
                    "The repairs are scheduled for the summer of 2025, when the bridge will be closed for about ten weeks. Until then the corroded "
                    "east end of the lower chord will be monitored every 6 months. The next principal inspection is due in 2027."
                ),
            ),
            new_page=False,
        ),
    ),
)

LIBRARY = Doc(
    "northfield-library-handbook.pdf",
    "Northfield Community Library",
    "Member Handbook",
    (
        Section(
            "Welcome",
            (
                (
                    "Northfield Community Library is open to everyone, and membership is free for residents of Northfield. To get a library card, "
                    "bring a photo ID and a proof of address, such as a utility bill. Children under 12 need a parent or guardian to sign their "
                    "application."
                ),
                (
                    "Opening hours: Monday to Friday from 9 am to 8 pm and Saturday from 10 am to 4 pm. The library is closed on Sundays and public "
                    "holidays. Returned items can be left in the book drop by the front door at any time."
                ),
            ),
        ),
        Section(
            "Borrowing",
            (
                (
                    "Members can borrow up to 15 items at a time. Books and audiobooks are lent for 3 weeks, and DVDs for 1 week. Items can be "
                    "renewed twice, online or at the desk, unless another member has reserved them."
                ),
                (
                    "The library stopped charging overdue fines in 2022. If an item is lost or damaged, the member is charged its replacement cost. "
                    "Reservations cost nothing, and members are notified by e-mail when a reserved item is ready for collection."
                ),
            ),
        ),
        Section(
            "Services",
            (
                (
                    "Study rooms on the first floor can be booked for up to 3 hours per day. Printing and copying cost 10 cents per page in black "
                    "and white and 50 cents per page in colour. The free wireless network is called Northfield-Public and needs no password."
                ),
                (
                    "The Makerspace on the ground floor has a 3D printer, a laser cutter and sewing machines. Members must attend a free induction "
                    "session before using the 3D printer or the laser cutter."
                ),
            ),
        ),
        Section(
            "Events",
            (
                (
                    "Story time for children aged 3 to 6 takes place every Saturday at 10:30 am. The library book club meets on the first Wednesday "
                    "of each month; new members are welcome."
                ),
                "Every October the Friends of the Library hold their annual book sale, and the proceeds pay for new children's books.",
            ),
            new_page=False,
        ),
    ),
)

DOCS = (WATER, ESPRESSO, BRENNHAVEN, BRIDGE, LIBRARY)


def render(doc: Doc, out_dir: Path) -> Path:
    """Write ``doc`` as a PDF under ``out_dir``; returns its path."""
    from fpdf import FPDF

    class Pdf(FPDF):
        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", "I", 9)
            self.cell(0, 10, f"{doc.title} - {doc.subtitle} - page {self.page_no()}", align="C")

    pdf = Pdf(format="A4")
    pdf.set_creation_date(CREATED)
    pdf.set_title(f"{doc.title}: {doc.subtitle}")
    pdf.set_author("rag evaluation corpus (invented organisations)")
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.multi_cell(0, 10, doc.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 14)
    pdf.multi_cell(0, 8, doc.subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    for i, section in enumerate(doc.sections):
        if section.new_page and i > 0:
            pdf.add_page()
        elif i > 0:
            pdf.ln(4)
        pdf.set_font("Helvetica", "B", 14)
        pdf.multi_cell(0, 8, section.heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        pdf.set_font("Helvetica", "", 11)
        for paragraph in section.paragraphs:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    path = out_dir / doc.name
    pdf.output(str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, metavar="DIR", help=f"output folder (default: {OUT})")
    args = ap.parse_args(argv)
    try:
        import fpdf  # noqa: F401
    except ImportError:
        ap.error("fpdf2 is needed to generate the PDFs: pip install fpdf2")
    args.out.mkdir(parents=True, exist_ok=True)
    from pypdf import PdfReader

    for doc in DOCS:
        path = render(doc, args.out)
        pages = len(PdfReader(str(path)).pages)
        print(f"{path.name}: {pages} pages, {path.stat().st_size / 1024:.1f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
