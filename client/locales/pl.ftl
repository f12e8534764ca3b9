# Ledgerline — the desktop app's words, Polish (the default language).
# Every message here has its English twin in en.ftl; the build refuses a catalog that lacks one.

app-title = Ledgerline
app-tagline = Szyfrowane biuro rachunkowe: czat, klienci, dokumenty i zadania.

## Onboarding
onboarding-create = Załóż biuro
onboarding-join = Dołącz do biura
onboarding-relay = Adres serwera (relay)
onboarding-firm = Nazwa biura
onboarding-me = Twoje imię i nazwisko
onboarding-code = Kod zaproszenia
onboarding-create-submit = Załóż
onboarding-join-submit = Dołącz
onboarding-fingerprint = Odcisk tego urządzenia
onboarding-fingerprint-help = Przeczytaj go administratorowi, który porówna go u siebie i zatwierdzi Twoje dołączenie.
onboarding-recovery = Twój klucz odzyskiwania
onboarding-recovery-help = Zapisz go i przechowuj w bezpiecznym miejscu (np. w sejfie biura). Pokazujemy go tylko teraz. Gdy stracisz to urządzenie, ten klucz przywróci całą Twoją historię na nowym („Odzyskaj konto” przy pierwszym uruchomieniu).
onboarding-recovery-saved = Zapisałem klucz — dalej
onboarding-recover = Odzyskaj konto
onboarding-recover-help = Straciłeś urządzenie? Wpisz klucz odzyskiwania, który zapisałeś przy dołączaniu. Twoje poprzednie urządzenia zostaną odłączone, a cała historia wróci na to urządzenie.
onboarding-recovery-input = Klucz odzyskiwania
onboarding-recover-submit = Odzyskaj moje konto
onboarding-working = Chwileczkę…
onboarding-continue = Dalej

## The main window
nav-customers = Klienci
nav-search = Szukaj klienta
nav-add-customer = Dodaj klienta
nav-sync = Synchronizuj
nav-synced = Zsynchronizowano: { $messages ->
    [one] { $messages } nowa wiadomość
    [few] { $messages } nowe wiadomości
   *[other] { $messages } nowych wiadomości
}
nav-language = Język
nav-signed-in = { $me } · { $firm }

customer-name = Nazwa firmy
customer-nip = NIP
customer-add-submit = Dodaj
customer-none = Brak klientów. Dodaj pierwszego.
customer-pick = Wybierz klienta z listy.
customer-lead = potencjalny klient

tab-timeline = Oś czasu
tab-chat = Czat
tab-tasks = Zadania

timeline-empty = Nic tu jeszcze nie ma.
timeline-kind-message = Wiadomość
timeline-kind-note = Notatka
timeline-kind-task = Zadanie
timeline-kind-event = Wydarzenie
timeline-kind-document = Dokument

chat-empty = Brak wiadomości. Napisz pierwszą.
chat-placeholder = Napisz wiadomość…
chat-send = Wyślij
chat-waiting = (czeka na klucz)
chat-deleted = (usunięta)

task-title = Zadanie
task-due = Termin
task-add-submit = Dodaj zadanie
task-none = Brak zadań.
task-open = otwarte
task-done = zrobione

error-title = Nie udało się

## Sections
nav-leads = Potencjalni klienci
nav-board = Zadania
nav-calendar = Kalendarz
nav-office = Biuro
nav-audit = Audyt
nav-settings = Ustawienia
nav-global-search = Szukaj wszędzie…

tab-documents = Dokumenty

chat-reply = Odpowiedz
chat-edit = Edytuj
chat-delete = Usuń
chat-edited = (edytowana)
chat-replying = Odpowiedź na
chat-editing = Edycja

doc-drop = Przeciągnij tu pliki, aby je zaszyfrować i wysłać.
doc-year = Rok, którego dotyczą
doc-col-name = Nazwa
doc-col-size = Rozmiar
doc-col-year = Rok
doc-col-added = Dodano
doc-none = Brak dokumentów.
doc-download = Pobierz
doc-uploaded = Wysłano i zaszyfrowano.
doc-saved = Zapisano: { $path }

## Task board and calendar
board-column-open = Do zrobienia
board-column-delegated = Przekazane (czekają)
board-column-done = Zrobione
board-delegated = przekazane
board-rolling = przechodzące
board-recurring = cykliczne
board-mark-done = Zrobione
calendar-month = Miesiąc
calendar-week = Tydzień
calendar-today = Dziś

## Leads
lead-add-submit = Dodaj potencjalnego klienta
lead-none = Brak potencjalnych klientów.
lead-convert = Zrób klientem
lead-stage-new = nowy
lead-stage-contacted = kontakt nawiązany
lead-stage-offer = oferta wysłana
lead-stage-won = pozyskany
lead-stage-lost = utracony

## Search
search-title = Wyniki dla „{ $query }”
search-none = Nic nie znaleziono.
search-kind-message = wiadomość
search-kind-file = klient
search-kind-document = dokument
search-kind-note = notatka

## Office
office-members = Członkowie i urządzenia
office-member = Osoba
office-role = Rola
office-fingerprint = Odcisk
office-devices = Urządzenia
office-files = Klienci
office-you = Ty
office-revoked = odwołany
office-revoke = Odwołaj
office-invite = Zaproś
office-invite-name = Imię i nazwisko nowej osoby
office-invite-code = Kod zaproszenia (przekaż go osobiście):
office-invitations = Otwarte zaproszenia
office-expires = ważne do { $when }
office-approve = Zatwierdź
office-approve-name = Kto dołącza
office-approve-fingerprint = Odcisk odczytany przez tę osobę
office-approve-help = Porównaj odcisk, który ta osoba widzi u siebie, zanim zatwierdzisz: inny odcisk oznacza, że ktoś się podszywa.
office-access = Dostęp do klientów
office-access-team = zespół { $team }
office-access-via = ma dostęp przez zespół lub zastępstwo
office-grant = Daj dostęp
office-remove-access = Odbierz dostęp
office-covers = Zastępstwa
office-cover-line = Nieobecny: { $absent }; zastępuje: { $colleague }; od { $from } do { $until } włącznie
office-cover-absent = Nieobecny
office-cover-colleague = Zastępca
office-cover-from = Od
office-cover-until = Do (włącznie)
office-cover-grant = Ustal zastępstwo
office-cover-end = Zakończ teraz
office-rotation-pending = Poprzednie odwołanie nie dokończyło wymiany kluczy; dokończy ją następna synchronizacja.
cover-state-planned = zaplanowane
cover-state-active = trwa
cover-state-expired = minęło
cover-state-ended = zakończone
role-admin = administrator
role-member = pracownik
role-auditor = audytor

revoke-title = Odwołać: { $name }?
revoke-plan-devices = { $count ->
    [one] { $count } urządzenie zostanie od razu odcięte od serwera
    [few] { $count } urządzenia zostaną od razu odcięte od serwera
   *[other] { $count } urządzeń zostanie od razu odciętych od serwera
}
revoke-plan-keys = { $count ->
    [one] { $count } klucz osoby dostanie nową wersję
    [few] { $count } klucze osób dostaną nowe wersje
   *[other] { $count } kluczy osób dostanie nowe wersje
}
revoke-plan-files = { $count ->
    [one] { $count } klient dostanie nowy klucz:
    [few] { $count } klienci dostaną nowe klucze:
   *[other] { $count } klientów dostanie nowe klucze:
}
revoke-warning = Tej osoby nie da się przywrócić: może wrócić tylko przez nowe zaproszenie.
revoke-confirm = Odwołaj { $name }
revoke-progress-keys = Nowe klucze osób
revoke-progress-files = Nowe klucze klientów
revoke-done = Gotowe. Nowe klucze klientów: { $files }, nowe wersje kluczy osób: { $keys }. Serwer odrzuca odwołane urządzenia.
dialog-close = Zamknij
dialog-cancel = Anuluj

## Audit
audit-export = Eksport dla audytora
audit-out = Plik paczki
audit-from = Od dnia
audit-to = Do dnia
audit-for = Nazwy dla audytora
audit-no-names = bez nazw (same identyfikatory)
audit-export-submit = Eksportuj
audit-exported = Zapisano paczkę. Wpisy dziennika: { $entries }, punkty kontrolne: { $checkpoints }.
audit-verify = Weryfikacja paczki (offline)
audit-bundle = Plik paczki do sprawdzenia
audit-verify-submit = Sprawdź
audit-verified = Paczka jest prawdziwa. Wpisy: { $size } (w całości: { $entries }), punkty kontrolne: { $checkpoints }, zdarzenia składu: { $roster }. Każdy podpis, punkt kontrolny i korzeń się zgadza.
audit-rotation = Wymiana kluczy kompletna po: { $what } ({ $at }); nowe klucze klientów: { $files }, kluczy osób: { $keys }.
audit-ended-member_removed = usunięcie z kancelarii: { $who }
audit-ended-device_revoked = unieważnienie urządzenia { $device } ({ $who })
audit-ended-file_access_removed = odebranie dostępu do klienta { $file }: { $who }
audit-ended-cover_expired = koniec zastępstwa: { $colleague } za { $who }
audit-ended-cover_ended_early = wcześniejsze zakończenie zastępstwa: { $colleague } za { $who }
audit-filter-who = Kto
audit-filter-what = Co
audit-rows = Pokazano { $shown } z { $total }
audit-col-time = Kiedy (UTC)
audit-col-who = Kto
audit-col-what = Co
audit-col-subjects = Czego dotyczy

## Settings
settings-relay = Adres serwera (relay)
settings-relay-help = Nowy adres zostaje zapisany dopiero, gdy serwer pod nim poda dziennik i skład tego biura, które się zgadzają.
settings-save = Zapisz
settings-saved = Zapisano.
settings-store = Dane na tym komputerze
settings-store-keyring = Lokalna baza jest zaszyfrowana kluczem z pęku kluczy systemu.
settings-store-passphrase = Lokalna baza jest zaszyfrowana kluczem chronionym hasłem (Argon2id).
settings-fingerprint = Twój odcisk

## The live channel
live-online = ● na żywo
live-offline = ○ brak połączenia, ponowna próba za { $seconds } s
live-revoked = To urządzenie zostało odwołane

## Waiting for approval
waiting-title = Czekamy na zatwierdzenie
waiting-help = Administrator biura „{ $firm }” porównuje ten odcisk z tym, który mu przeczytasz, i zatwierdza Twoje dołączenie. To okno przejdzie dalej samo.
waiting-check = Sprawdź teraz

## Dialogs
doc-choose = Wybierz pliki…
choose = Wybierz…
doc-preview = Podgląd

## The local store's passphrase
passphrase-why = Ten komputer nie ma systemowego pęku kluczy: dane biura na nim zaszyfruje hasło, które teraz wybierzesz (co najmniej 8 znaków). Bez niego nikt ich nie otworzy — także Ty.
passphrase-new = Nowe hasło
passphrase-repeat = Powtórz hasło
passphrase-old = Obecne hasło
passphrase-mismatch = Hasła się różnią.
passphrase-change = Zmiana hasła
passphrase-change-submit = Zmień hasło
passphrase-changed = Hasło zmienione.
unlock-help = Dane biura na tym komputerze są zaszyfrowane. Podaj hasło, aby je otworzyć.
unlock-passphrase = Hasło
unlock-submit = Otwórz

## Notes, attachments, devices
note-placeholder = Notatka o kliencie (widzą ją osoby z dostępem)…
note-add = Dodaj notatkę
chat-drop-hint = Upuść plik na rozmowę, aby go zaszyfrować i załączyć.
office-this-device = to urządzenie
office-revoke-device = Odwołaj urządzenie
revoke-device-title = Odwołać urządzenie { $device } ({ $name })?
revoke-device-help = Na zgubiony lub skradziony komputer: serwer od razu odrzuca to urządzenie. { $name } zostaje w biurze z nowym kluczem, a klienci, do których ten klucz dawał dostęp, dostaną nowe klucze.

## The access log's actions (keyed by the verifier's English words)
audit-action-changed-the-roster = zmienił(a) skład biura
audit-action-created-a-room = utworzył(a) pokój
audit-action-changed-a-room-s-members = zmienił(a) członków pokoju
audit-action-sent-a-message = wysłał(a) wiadomość
audit-action-read-conversation-history = odczytał(a) historię rozmowy
audit-action-wrote-a-record = zapisał(a) wpis
audit-action-read-records = odczytał(a) wpisy
audit-action-shared-a-member-key = udostępnił(a) klucz osoby
audit-action-fetched-member-keys = pobrał(a) klucze osób
audit-action-shared-a-file-key = udostępnił(a) klucz klienta
audit-action-shared-a-file-key-with-a-team = udostępnił(a) klucz klienta zespołowi
audit-action-made-a-new-team-key = utworzył(a) nowy klucz zespołu
audit-action-shared-a-team-key = udostępnił(a) klucz zespołu
audit-action-fetched-team-keys = pobrał(a) klucze zespołów
audit-action-fetched-file-keys = pobrał(a) klucze klientów
audit-action-started-a-new-key-epoch = rozpoczął(ęła) nową epokę klucza
audit-action-fetched-older-file-keys = pobrał(a) starsze klucze klienta
audit-action-uploaded-a-document = wysłał(a) dokument
audit-action-downloaded-a-document = pobrał(a) dokument
audit-action-opened-a-document = otworzył(a) dokument
audit-action-opened-a-conversation-on-the-device = otworzył(a) rozmowę na urządzeniu
audit-action-erased-a-customer-file = usunął(ęła) teczkę klienta

## Reply templates
reply-title = Szablony odpowiedzi
reply-help = Odpowiedzi, których biuro udziela często. W tekście: {"{"}klient{"}"} (nazwa klienta), {"{"}termin{"}"} (data), {"{"}kwota{"}"} (kwota w złotych).
reply-personal = mój
reply-firm = biura
reply-only-mine = tylko dla mnie
reply-name = Nazwa
reply-body = Treść
reply-save = Zapisz szablon
reply-delete = Usuń
reply-pick = Szablon odpowiedzi…
reply-insert = Wstaw
reply-deadline = Termin
reply-amount = Kwota, np. 1234,50

## Teams
office-teams = Zespoły
office-teams-help = Klient przypisany zespołowi jest dostępny dla każdego, kto w nim jest. Nazwy zespołów nie trafiają na serwer.
office-team-name = Nazwa zespołu
office-team-create = Utwórz zespół
office-team-add = Dodaj do zespołu
office-team-remove = Usuń z zespołu (klucze zespołu i jego klientów zostaną wymienione)

## Offers
timeline-kind-offer = Oferta
offer-status-draft = szkic
offer-status-sent = wysłana
offer-status-accepted = przyjęta
offer-status-rejected = odrzucona
tab-offers = Oferty
offer-none = Brak ofert.
offer-service = Usługa
offer-billing = Rozliczenie
offer-billing-monthly = miesięcznie
offer-billing-once = jednorazowo
offer-net = Netto
offer-vat = VAT
offer-vat-amount = Kwota VAT
offer-gross = Brutto
offer-line-add = Dodaj usługę
offer-line-remove = Usuń usługę
offer-valid-until = Ważna do
offer-add-submit = Utwórz ofertę
offer-number = Oferta { $number }
offer-valid-through = ważna do { $day }
offer-expired = termin minął
offer-total-monthly = Razem miesięcznie
offer-total-once = Razem jednorazowo
offer-send = Wyślij (PDF do dokumentów)
offer-accept = Oznacz jako przyjętą
offer-reject = Oznacz jako odrzuconą
offer-pdf-stored = PDF oferty jest w dokumentach klienta.

## Rozmowa z klientem (goście)
tab-conversation = Klient
timeline-kind-conversation = Rozmowa z klientem
conversation-staff-help = Rozmowa z osobami po stronie klienta (goście). Wiadomości wewnętrzne widzi tylko biuro.
conversation-internal = wewnętrzna
conversation-internal-only = Tylko dla biura
conversation-internal-placeholder = Uwaga wewnętrzna (klient jej nie zobaczy)…
conversation-drop-hint = Upuść plik na rozmowę, aby go zaszyfrować i udostępnić w tej rozmowie.
guest-invite = Zaproś gościa
guest-invite-name = Imię i nazwisko gościa
guest-invite-code = Kod zaproszenia (ważny 7 dni) — przekaż go zaufanym kanałem:
guest-signed-in = { $me } · gość biura { $firm }
guest-title = Rozmowa z biurem { $firm }
guest-help = Tu piszesz z biurem rachunkowym i wymieniasz dokumenty. Wszystko jest szyfrowane na Twoim urządzeniu.

## Mail intake
timeline-kind-mail = E-mail
search-kind-mail = e-mail
mail-category-invoice = Faktura
mail-category-bank_statement = Wyciąg bankowy
mail-category-tax_office = Urząd skarbowy
mail-category-payroll = Kadry i płace
mail-category-other = Inne
nav-mail = Poczta
tab-mail = E-maile
mail-title = Poczta biura
mail-connect-title = Podłącz skrzynkę
mail-connect-help = Poczta jest czytana na tym komputerze (IMAP z TLS) i trafia zaszyfrowana do teczek klientów. Hasło zostaje w pęku kluczy systemu, nigdy na serwerze.
mail-host = Serwer IMAP
mail-port = Port
mail-user = Login
mail-password = Hasło
mail-folder = Folder
mail-ca-file = Certyfikat CA biura (plik PEM, opcjonalnie)
mail-connect = Podłącz
mail-password-in-keyring = (hasło w pęku kluczy systemu)
mail-password-in-store = (hasło w zaszyfrowanej bazie tego urządzenia)
mail-fetch = Pobierz pocztę
mail-fetching = Pobieranie…
mail-summary = Nowych wiadomości: { $read }; do teczek klientów: { $imported }; do skrzynki odbiorczej: { $inbox }; już znanych: { $duplicates }; nieczytelnych: { $failed }.
mail-unreadable = Wiadomość UID { $uid } jest nieczytelna
mail-renumbered = { $mailbox }: serwer ponumerował folder od nowa; przeczytano go ponownie, bez duplikatów
mail-inbox = Do przydzielenia
mail-inbox-empty = Wszystkie wiadomości są w teczkach klientów.
mail-pick-customer = Wybierz klienta
mail-rule-none = Bez reguły
mail-rule-from = Zawsze od { $from }
mail-rule-domain = Zawsze z tej domeny
mail-rule-subject = Zawsze z tym tematem
mail-assign = Przydziel
mail-rules = Reguły biura
mail-rules-none = Brak reguł: poczta trafia do klientów po adresie nadawcy, domenie lub NIP-ie.
mail-rule-on-from = Nadawca
mail-rule-on-domain = Domena
mail-rule-on-subject = Temat
mail-rule-on-attachment = Załącznik
mail-rule-remove = Usuń
mail-none = Brak e-maili od tego klienta.
mail-no-subject = (bez tematu)
mail-connect-another = Podłącz kolejną skrzynkę
mail-basis-rule = reguła biura
mail-basis-address = adres nadawcy z karty klienta
mail-basis-domain = domena nadawcy z karty klienta
mail-basis-nip = NIP w temacie lub nazwie załącznika
mail-basis-manual = przydzielono ręcznie
mail-basis-none = nic nie pasuje
mail-basis-ambiguous = pasuje do kilku klientów

## KSeF intake
timeline-kind-invoice = Faktura KSeF
search-kind-invoice = faktura
invoice-direction-sales = sprzedaż
invoice-direction-purchase = zakup
tab-ksef = Faktury KSeF
ksef-token-title = Połącz z KSeF
ksef-token-change = Zmień token KSeF
ksef-token-help = Token KSeF klienta jest sprawdzany przez logowanie do KSeF, a potem trzymany zaszyfrowany w teczce klienta (współpracownicy z dostępem pobierają nim faktury). Serwer Ledgerline nigdy go nie widzi.
ksef-token = Token KSeF
ksef-nip = NIP
ksef-nip-card = z karty klienta
ksef-environment = Środowisko
ksef-env-prod = produkcyjne
ksef-env-demo = przedprodukcyjne (demo)
ksef-env-test = testowe
ksef-since = Pobieraj od dnia
ksef-token-save = Sprawdź i zapisz
ksef-checking = Sprawdzam w KSeF…
ksef-settings = NIP { $nip }, środowisko { $environment }, faktury od { $since }.
ksef-sync = Pobierz faktury z KSeF
ksef-syncing = Pobieram z KSeF…
ksef-summary = Nowych faktur sprzedaży: { $sales }; zakupu: { $purchases }; już w teczce: { $known }; zadań płatności: { $tasks }.
ksef-stopped = Przerwano: { $reason }. Następne pobranie zacznie od tego miejsca.
ksef-none = Brak faktur z KSeF w tej teczce.
ksef-unreadable = nieczytelna
ksef-col-issued = Wystawiona
ksef-col-direction = Rodzaj
ksef-col-number = Numer
ksef-col-party = Kontrahent
ksef-col-net = Netto
ksef-col-vat = VAT
ksef-col-gross = Brutto
ksef-col-due = Termin płatności

## Błędy. Nazwa komunikatu: error-RODZAJ-POWÓD, jeśli katalog go ma, inaczej error-RODZAJ
## (słowa `code` i `reason` z --json w CLI, z "-" zamiast "_"). Angielski opis techniczny
## jest pokazany zwinięty pod error-details.
error-details = Szczegóły (dla pomocy technicznej)
error-unknown = Wystąpił nieoczekiwany błąd.
error-relay-unreachable = Nie można połączyć się z serwerem. Sprawdź połączenie z siecią i spróbuj ponownie.
error-relay-unreachable-timeout = Serwer nie odpowiedział na czas. Sprawdź połączenie z siecią; ponowna próba nastąpi sama.
error-relay-unreachable-closed = Serwer zamknął połączenie (np. przy ponownym uruchomieniu); ponowna próba nastąpi sama.
error-relay-unreachable-dropped = Połączenie z serwerem zostało przerwane; ponowna próba nastąpi sama.
error-relay-refused = Serwer odrzucił żądanie.
error-relay-refused-revoked-device = To urządzenie zostało odwołane: nie ma już dostępu do biura.
error-relay-refused-unknown-device = Serwer nie zna tego urządzenia ani tego biura.
error-relay-refused-stale-request = Zegar tego komputera się spóźnia: ustaw właściwy czas i spróbuj ponownie.
error-relay-refused-future-request = Zegar tego komputera się spieszy: ustaw właściwy czas i spróbuj ponownie.
error-relay-refused-rate-limited = Zbyt wiele żądań naraz: odczekaj chwilę i spróbuj ponownie.
error-relay-refused-forbidden = Twoja rola w biurze na to nie pozwala.
error-relay-refused-guest-forbidden = Gość może korzystać tylko ze swojej rozmowy z biurem.
error-relay-refused-erased = Ta teczka klienta została usunięta.
error-relay-refused-storage-full = Dysk serwera jest pełny: powiadom administratora biura.
error-relay-refused-message-too-large = Wiadomość jest za długa: wyślij tekst jako dokument.
error-relay-refused-body-too-large = To jest większe, niż serwer przyjmuje.
error-relay-refused-legal-hold = Teczka klienta jest objęta blokadą prawną: nic z niej nie może być teraz usunięte.
error-relay-refused-version-conflict = Ktoś zmienił to w tej samej chwili: odśwież i spróbuj ponownie.
error-relay-refused-not-found = Serwer nie ma tego, o co poproszono.
error-relay-garbage = Serwer odpowiedział nieprawidłowo. Nic nie zostało zmienione.
error-integrity = Kontrola integralności nie powiodła się: dane z serwera nie są tym, co podpisała osoba z biura. Nic nie zostało zmienione; powiadom administratora biura.
error-fingerprint-mismatch = Odciski kluczy się różnią: nie zatwierdzaj. Porównaj odcisk z tą osobą telefonicznie lub osobiście.
error-onboarding = Zaproszenie lub prośba o dołączenie są nieważne.
error-not-found = Nie znaleziono.
error-not-allowed = Twoja rola w biurze na to nie pozwala.
error-wrong-key = Błędne hasło.
error-keyring = Systemowy pęk kluczy, w którym jest klucz tego profilu, jest niedostępny.
error-keyring-missing = Systemowy pęk kluczy nie ma już klucza tego profilu.
error-store = Błąd lokalnej bazy danych.
error-store-too-new = Ten profil zapisała nowsza wersja Ledgerline: zaktualizuj aplikację.
error-invalid = To żądanie jest nieprawidłowe.
error-invalid-message-too-long = Wiadomość jest za długa: wyślij tekst jako dokument.
error-invalid-preview-not-image = Tu pokazywane są tylko obrazy (PNG, JPEG, GIF, WebP).
error-invalid-preview-too-big = Za duży, by go tu pokazać: pobierz go.
error-invalid-passphrase-short = Hasło musi mieć co najmniej 8 znaków.
error-invalid-passphrase-needed = Brak systemowego pęku kluczy na klucz: ustaw hasło.
error-invalid-names-needed = Potrzebna jest nazwa biura i Twoje imię i nazwisko.
error-invalid-name-needed = Potrzebne jest imię i nazwisko nowej osoby.
error-invalid-role = Rola to administrator, pracownik lub audytor.
error-invalid-file-id = To nie jest teczka klienta.
error-invalid-empty-message = Pusta wiadomość nie jest wysyłana.
error-invalid-empty-edit = Poprawka nie może opróżnić wiadomości: usuń ją.
error-invalid-empty-note = Pusta notatka nie jest zapisywana.
error-invalid-day = Dzień zapisuje się jako RRRR-MM-DD.
error-invalid-time = Czas to dzień (RRRR-MM-DD) albo dzień i godzina.
error-invalid-cover-order = Zastępstwo kończy się, zanim się zaczyna.
error-invalid-bundle-name = Podaj nazwę pliku z dziennikiem.
error-invalid-unreadable = Nie można odczytać pliku.
error-invalid-unwritable = Nie można tam zapisać pliku: sprawdź folder i wolne miejsce.
error-invalid-file-name = Nazwa pliku zawiera znaki, których nie da się odczytać: zmień ją.
error-invalid-email = To nie jest adres e-mail.
error-invalid-nip = To nie jest poprawny NIP: sprawdź cyfry (10, ostatnia to cyfra kontrolna).
error-invalid-regon = To nie jest poprawny REGON: sprawdź cyfry (9 lub 14, ostatnia to cyfra kontrolna).
error-invalid-template-id = Identyfikator szablonu to małe litery, cyfry i myślniki (np. zus-15).
error-invalid-rule-no-deadline = Ta reguła nie daje żadnego terminu w najbliższym roku.
error-invalid-not-a-file = Można wybrać tylko plik, nie folder.
error-invalid-guest-hours = Zaproszenie gościa jest ważne od 1 do 720 godzin.
error-invalid-ksef-environment = Nieznane środowisko KSeF.
error-invalid-mail-rule = Nieznana reguła dla wiadomości.
error-invalid-calendar-span = Kalendarz pokazuje najwyżej dwa miesiące naraz.
error-invalid-offer-line = Pozycja oferty jest niepełna: usługa, rozliczenie, kwota netto i stawka VAT.
error-invalid-language = Nieznany język.
error-invalid-invite-code = To nie jest poprawny kod zaproszenia: sprawdź go z osobą, która go wysłała.
error-invalid-recovery-key = To nie jest poprawny klucz odzyskiwania: sprawdź każdą grupę znaków.
error-invalid-title-needed = Potrzebny jest tytuł.
error-invalid-event-order = Wydarzenie musi kończyć się po rozpoczęciu.
error-invalid-offer-past = Ważność oferty nie może kończyć się w przeszłości.
error-invalid-offer-expired = Ważność tej oferty minęła: przygotuj nową.
error-invalid-ksef-token = To nie jest token KSeF.
error-invalid-nip-needed = Karta klienta nie ma numeru NIP: wpisz go.
error-invalid-mailbox-needed = Skrzynka potrzebuje adresu serwera i nazwy użytkownika.
error-invalid-rekeyed-during-upload = Podczas wysyłania komuś odebrano dostęp do tej teczki klienta: wyślij dokument ponownie.
error-queued = Serwer teraz tego nie przyjmuje: czeka na tym komputerze i zostanie wysłane przy następnej synchronizacji.
error-mail-server = Błąd serwera poczty.
error-mail-server-unreachable = Nie można połączyć się z serwerem poczty.
error-mail-server-login = Serwer poczty odrzucił logowanie: sprawdź nazwę użytkownika i hasło.
error-ksef = Błąd KSeF.
error-ksef-unreachable = Nie można połączyć się z KSeF.
error-ksef-login = KSeF odrzucił logowanie: sprawdź token i NIP.
error-ksef-rate-limited = KSeF ogranicza teraz liczbę zapytań: spróbuj później.
error-ksef-rejected = KSeF odrzucił zapytanie.
error-app = Błąd aplikacji.
error-app-stopped = Praca aplikacji w tle została przerwana: uruchom aplikację ponownie.
error-app-no-profile = Nie ma jeszcze profilu: załóż biuro albo do niego dołącz.
error-app-dialog = Okno wyboru nieoczekiwanie się zamknęło.
error-app-no-downloads = Brak folderu Pobrane.
error-audit-finding = Dziennik dostępu nie przechodzi weryfikacji: nie można na nim polegać.
error-audit-finding-malformed = To nie jest czytelny plik dziennika dostępu Ledgerline.
error-audit-finding-fork = Dziennik dostępu się rozgałęzia: serwer pokazał różne historie.
error-audit-finding-bad-signature = Podpis wpisu się nie zgadza: dziennik został zmieniony.
error-audit-finding-root-mismatch = Dziennik nie zgadza się z podpisanym punktem kontrolnym: został zmieniony.
error-audit-finding-checkpoint-signature = Podpis punktu kontrolnego dziennika się nie zgadza.
error-audit-finding-out-of-order = Wpisy są w złej kolejności: dziennik został zmieniony.
