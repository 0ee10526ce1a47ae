/** The LISEZ-MOI.txt of an evidence bundle: how a third party checks it with nothing but SHA-256. */
export const README = `DOSSIER DE PREUVE ARMOIRE
=========================

Ce dossier décrit un fichier, ses versions et tout ce que le journal d'activité
en dit, sous une forme qu'un tiers vérifie sans Armoire.

Contenu
-------
fichier.json     le fichier, son emplacement, et chaque version : numéro, nom,
                 type, taille et SHA-256 du contenu en clair (hexadécimal).
journal.json     chaque entrée du journal qui concerne le fichier, telle qu'elle
                 est enregistrée, avec "hash_precedent" et "hash" (hexadécimal) ;
                 "verification" : le résultat de la vérification de la chaîne
                 entière de l'organisation au moment de l'export ; "tete" : la
                 dernière entrée de la chaîne à ce moment.
conformite.json  les règles de conservation, clôtures, verrous et gels qui se
                 sont appliqués au fichier ou à ses conteneurs, avec leurs dates
                 de pose, de retrait ou de levée.
empreintes.json  le SHA-256 (hexadécimal) de chacun des fichiers ci-dessus.

1. Intégrité du dossier
-----------------------
Calculer le SHA-256 de chaque fichier (octets tels quels) et le comparer à
empreintes.json.

2. Contenu d'un fichier
-----------------------
Le SHA-256 d'une copie du document doit être celui de sa version dans
fichier.json ; les entrées FILE_UPLOADED et FILE_VERSION_ADDED du journal
portent le même SHA-256 dans leurs "details".

3. Chaque entrée du journal (champ "schema_hash")
-------------------------------------------------
Forme canonique de "details" (schémas 1 et 2) : JSON sans espaces, clés des objets triées par
ordre des unités de code UTF-16, chaînes et nombres écrits comme JSON.stringify
(JavaScript) les écrit. "created_at" : ISO 8601 en UTC avec millisecondes
(ex. 2026-03-06T09:00:00.000Z).

Schéma 3 (entrées actuelles) :
  empreinte = SHA-256( UTF-8( JCS([
      organisation_id, utilisateur_id, action, cible_type, cible_id, cible_nom,
      resultat, severite, ip, user_agent, details, created_at ]) ) )
  où JCS est la forme canonique JSON de la RFC 8785 (details y est un objet).
  hash = SHA-256( octets(hash_precedent) || empreinte || sequence sur 8 octets
                  gros-boutiste )   (hash_precedent absent : aucun octet)

Schéma 2 : comme le schéma 3, mais
  empreinte = SHA-256( UTF-8( JSON.stringify([
      organisation_id, utilisateur_id, action, cible_type, cible_id, cible_nom,
      resultat, severite, ip, user_agent, <details canonique, en chaîne>,
      created_at ]) ) )

Schéma 1 (entrées plus anciennes) :
  hash = SHA-256( UTF-8( JSON.stringify([
      organisation_id, sequence, utilisateur_id, action, cible_type, cible_id,
      cible_nom, resultat, severite, ip, user_agent, <details canonique, en
      chaîne>, created_at, hash_precedent en hexadécimal ou null ]) ) )

Le hash recalculé doit être égal au champ "hash". Une entrée modifiée après
coup ne le serait plus ; son "hash" est aussi le "hash_precedent" de l'entrée
suivante de la chaîne, de sorte qu'aucune entrée ne peut être retirée ou
réécrite sans rompre la chaîne (ce que "verification" constate).

4. Dans le temps
----------------
Conserver "tete" : un export ultérieur du journal doit contenir cette entrée,
avec ce hash, et la chaîne doit y mener.
`
